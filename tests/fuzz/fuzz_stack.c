/* libFuzzer target: the split stack parser (migrate/stack.c, stack_settings.c) reads compose's
 * rendering of the user's compose file. Any input must be rejected cleanly or give a stack
 * whose paths and settings are consistent; the command-line reader must take any argv (the
 * input split at NUL bytes). Seeds: fuzz_stack.seeds/ (compose config JSON of the layouts). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../migrate/stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), arg[16384];
	static hm_stack s;
	hm_compose_project p;
	hm_stack_select sel = {NULL, NULL};
	hm_error err;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&p, 0, sizeof p);
	strcpy(p.files[0], "/srv/my hive/docker/templates/agent.yml");
	p.n_files = 1;
	strcpy(p.profile, "agent");
	if (hm_stack_parse_project(text, &p, &sel, &s, &err) == 0) {
		if (!s.pg_service[0] || s.n_settings > HM_STACK_MAX_SETTINGS ||
		    s.n_skipped > HM_STACK_MAX_SKIPPED || s.n_api_services > HM_STACK_MAX_APIS)
			abort();
		if (!s.data_volume[0] && strncmp(s.pgdata, s.data_dir, strlen(s.data_dir)) != 0)
			abort();
		if (hm_stack_settings_arg(&s, arg, sizeof arg) != 0)
			abort();
		for (int i = 0; i < s.n_settings; i++)
			if (!s.settings[i].name[0] || strchr(s.settings[i].value, '\'') ||
			    strchr(s.settings[i].value, '\n'))
				abort();
	} else if (!err.message[0] || s.db_password[0]) {
		abort(); /* an error says why, and no password is left behind */
	}
	/* the same bytes as a command line */
	const char *argv[64];
	int argc = 0;
	for (size_t i = 0; i < size && argc < 64; i += strlen(text + i) + 1)
		argv[argc++] = text + i;
	memset(&s, 0, sizeof s);
	hm_stack_parse_command(&s, argv, argc);
	if (s.n_settings > HM_STACK_MAX_SETTINGS || s.n_skipped > HM_STACK_MAX_SKIPPED ||
	    hm_stack_settings_arg(&s, arg, sizeof arg) != 0)
		abort();
	free(text);
	return 0;
}
