/* The MLPerf Tiny / EEMBC runner's performance-mode commands, answered by any tinydeploy firmware.
 *
 * The runner sends `<command>%` and reads reply lines until one contains `m-ready`:
 *   name%            m-name-dut-[tinydeploy-<board>]
 *   profile%         m-profile-[...], m-model-[<id>]
 *   timestamp%       m-lap-us-<micros>
 *   db load N%       m-[Expecting N bytes]            (N must equal the input tensor's size in bytes)
 *   db <hex>%        m-load-done once N bytes arrived
 *   db print [N] [O]% m-buffer-xx-xx-...             (8 bytes a line)
 *   infer N [W]%     m-warmup-start-W, m-warmup-done, m-infer-start-N, m-lap-us-<t0>, m-lap-us-<t1>,
 *                    m-infer-done, m-results-[...]
 *   results%         m-results-[...]  (the raw int8 output tensor as decimal integers)
 * every answer ends with `m-ready`; errors are `e-[...]` lines. See firmware/mlperf/README.md.
 *
 * td_protocol.c hands lines ended by '%' to the percent_command hook; the sketch forwards them here with
 * its protocol configuration (writer, clock). */
#ifndef TD_MLPERF_H
#define TD_MLPERF_H

#include <stdint.h>

#include "td_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds of `infer N W`: the device answers nothing while it runs, so one command cannot block it for ever. */
#ifndef TD_MLPERF_MAX_INFER
#define TD_MLPERF_MAX_INFER 1000000u
#endif
#ifndef TD_MLPERF_MAX_WARMUP
#define TD_MLPERF_MAX_WARMUP 100000u
#endif

/* Handle one runner command: `line` is the text before the '%' (len bytes, need not be terminated). */
void td_mlperf_command(const td_protocol_config *cfg, const char *line, uint32_t len);

#ifdef __cplusplus
}
#endif

#endif /* TD_MLPERF_H */
