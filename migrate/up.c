/* hive-migrate up (not built yet). */
#include "../cli/commands.h"

int hm_cmd_up(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return hm_cmd_not_implemented("up");
}
