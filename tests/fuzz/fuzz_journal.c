/* libFuzzer target: the migration journal decoder (migrate/journal.c) must reject any input
 * cleanly; what it accepts must encode and decode again to the same state, and the resume
 * state machine must give a defined answer for it. Seeds: fuzz_journal.seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	hm_journal j, k;
	hm_error err;
	char *again = NULL;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (hm_journal_decode(text, "fuzz", &j, &err) == 0) {
		hm_resume r = hm_journal_resume_action(&j);
		if (r < HM_RESUME_FRESH || r > HM_RESUME_NEED_ROLLBACK)
			abort();
		if (hm_journal_encode(&j, &again, &err) == 0) {
			if (hm_journal_decode(again, "fuzz-again", &k, &err) != 0)
				abort();
			if (hm_journal_rollback_mode(&j, 0) < HM_RBM_NONE ||
			    hm_journal_rollback_mode(&j, 0) >= HM_RBM__COUNT || k.rb_mode != j.rb_mode ||
			    k.live_step != j.live_step || k.cross_major != j.cross_major)
				abort();
			if (k.step != j.step || k.status != j.status || k.rb_step != j.rb_step ||
			    strcmp(k.archive, j.archive) != 0 || strcmp(k.data_dir, j.data_dir) != 0)
				abort();
			free(again);
		}
	}
	free(text);
	return 0;
}
