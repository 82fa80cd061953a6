/* Fuzz target: corral.yaml.
 *
 * Input: the file. It is written to a scratch file and loaded as corrald
 * loads its configuration (config.c: defaults, config_load(), which parses
 * with libyaml and checks every key, and config_finish(), the rules across
 * keys), then freed. A bad file is refused with a message naming file, line
 * and key; nothing is printed and nothing exits (the target would stop).
 *
 * Properties checked besides memory safety: a refusal always says why, and
 * a file that loads leaves a configuration that can be freed whole. */
#include "fuzz_util.h"

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128], error[CONFIG_ERROR_MAX] = "";
	struct server_config cfg;
	snprintf(path, sizeof(path), "%s/corral.yaml", fuzz_scratch());
	fuzz_write_file(path, data, size);
	FUZZ_CHECK(config_init_defaults(&cfg) == 0);
	int r = config_load(&cfg, path, error, sizeof(error));
	if (r == 0)
		r = config_finish(&cfg, error, sizeof(error));
	FUZZ_CHECK(r == 0 || r == -ENOMEM || error[0]);
	config_free(&cfg);
	return 0;
}
