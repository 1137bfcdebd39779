/* Device side of the tinydeploy serial protocol; the wire format is specified in docs/protocol.md.
 *
 * Commands:  td <id> <verb> [args]*<crc32, 8 hex>\n
 * Replies:   @td <id> <ok|err|data|ready> <name> [args] [key=value]*<crc32, 8 hex>\r\n
 * The CRC-32 (zlib) covers everything before the '*'. */
#include "td_protocol.h"
#include "td_format.h"

#include <string.h>

#include "td_bsp.h"
#include "td_crc32.h"
#include "td_writer.h"
#include "td_engine.h"

#define TD_TX_BUFFER 96u
#define TD_LATENCIES_PER_LINE 8u
#define TD_OUTPUT_BYTES_PER_LINE 64u
#define TD_HEARTBEAT_US 1000000u /* a run sends a line at least this often, so the host can tell it lives */
#define TD_ID_MAX 9u
#define TD_MAX_TOKENS 6u

static const td_protocol_config *g_cfg;
static int g_engine_status;

static char g_line[TD_PROTOCOL_LINE_MAX + 1u];
static uint32_t g_line_len;
static int g_line_overflow;

/* Inputs load in index order, each contiguously from offset 0: inputs below g_inputs_loaded are complete, and
 * g_input_filled bytes of input g_inputs_loaded have arrived. An invoke consumes them all (engines reuse input
 * memory for activations), so every `run` needs a fresh load. */
static uint32_t g_inputs_loaded;
static uint32_t g_input_filled;
static int g_has_output;
static uint32_t g_profiled_runs; /* inferences in the engine's per-op profile (those of the last `run`) */

static char g_tx_buffer[TD_TX_BUFFER];
static td_writer g_tx = {g_tx_buffer, TD_TX_BUFFER, 0u, 0u, 1, 0}; /* counts the CRC of each reply line */
static uint32_t g_last_line_us;

/* ---- framed output ---------------------------------------------------------------------------------- */

static const char kHexDigits[] = "0123456789ABCDEF";

static void put_hex_bytes(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        td_writer_char(&g_tx, kHexDigits[data[i] >> 4]);
        td_writer_char(&g_tx, kHexDigits[data[i] & 0x0Fu]);
    }
}

/* Values travel as one token: anything outside printable ASCII, and the characters the framing uses,
 * become %XX. */
static void put_escaped(const char *s)
{
    if (s == 0) {
        return;
    }
    for (; *s != '\0'; ++s) {
        uint8_t c = (uint8_t)*s;
        if (c <= 0x20u || c >= 0x7Fu || c == '%' || c == '*' || c == '=') {
            td_writer_char(&g_tx, '%');
            td_writer_char(&g_tx, kHexDigits[c >> 4]);
            td_writer_char(&g_tx, kHexDigits[c & 0x0Fu]);
        } else {
            td_writer_char(&g_tx, (char)c);
        }
    }
}

static void line_begin(const char *id, const char *kind)
{
    g_tx.crc = TD_CRC32_INIT;
    td_writer_str(&g_tx, "@td ");
    td_writer_str(&g_tx, id);
    td_writer_char(&g_tx, ' ');
    td_writer_str(&g_tx, kind);
}

static void put_word(const char *word)
{
    td_writer_char(&g_tx, ' ');
    td_writer_str(&g_tx, word);
}

static void put_key_u32(const char *key, uint32_t value)
{
    put_word(key);
    td_writer_char(&g_tx, '=');
    td_writer_u32(&g_tx, value);
}

static void put_key_i32(const char *key, int32_t value)
{
    put_word(key);
    td_writer_char(&g_tx, '=');
    td_writer_i32(&g_tx, value);
}

static void put_key_str(const char *key, const char *value)
{
    put_word(key);
    td_writer_char(&g_tx, '=');
    put_escaped(value);
}

static void line_end(void)
{
    uint32_t crc = td_crc32_final(g_tx.crc);
    td_writer_byte(&g_tx, '*');
    for (int shift = 28; shift >= 0; shift -= 4) {
        td_writer_byte(&g_tx, kHexDigits[(crc >> (uint32_t)shift) & 0x0Fu]);
    }
    td_writer_byte(&g_tx, '\r');
    td_writer_byte(&g_tx, '\n');
    td_writer_flush(&g_tx);
    if (g_cfg != 0 && g_cfg->micros != 0) {
        g_last_line_us = g_cfg->micros();
    }
}

static void reply_error(const char *id, const char *code)
{
    line_begin(id, "err");
    put_word(code);
    line_end();
}

void td_protocol_send_line(const char *text)
{
    line_begin("-", text);
    line_end();
}

/* ---- replies of extra commands ---------------------------------------------------------------------------- */

void td_reply_begin(const char *id, const char *kind) { line_begin(id, kind); }
void td_reply_word(const char *word) { put_word(word); }

void td_reply_u32(uint32_t value)
{
    td_writer_char(&g_tx, ' ');
    td_writer_u32(&g_tx, value);
}

void td_reply_i32(int32_t value)
{
    td_writer_char(&g_tx, ' ');
    td_writer_i32(&g_tx, value);
}

void td_reply_hex(const uint8_t *data, uint32_t len)
{
    td_writer_char(&g_tx, ' ');
    put_hex_bytes(data, len);
}

void td_reply_key_u32(const char *key, uint32_t value) { put_key_u32(key, value); }
void td_reply_key_i32(const char *key, int32_t value) { put_key_i32(key, value); }
void td_reply_key_str(const char *key, const char *value) { put_key_str(key, value); }
void td_reply_end(void) { line_end(); }
void td_reply_error(const char *id, const char *code) { reply_error(id, code); }

/* ---- parsing helpers ------------------------------------------------------------------------------------ */

static int is_valid_id(const char *s, uint32_t len)
{
    if (len == 0u || len > TD_ID_MAX) return 0;
    for (uint32_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9') return 0;
    }
    return 1;
}

/* ---- engine access ---------------------------------------------------------------------------------------- */

static uint32_t engine_input_count(void)
{
    return g_engine_status == 0 ? td_engine_input_count() : 0u;
}

static uint32_t engine_output_count(void)
{
    return g_engine_status == 0 ? td_engine_output_count() : 0u;
}

static uint8_t *engine_input(uint32_t index, uint32_t *bytes)
{
    *bytes = 0u;
    if (index >= engine_input_count()) return 0;
    uint8_t *input = td_engine_input_tensor(index, bytes);
    if (input == 0) *bytes = 0u;
    return input;
}

static const uint8_t *engine_output(uint32_t index, uint32_t *bytes)
{
    *bytes = 0u;
    if (index >= engine_output_count()) return 0;
    const uint8_t *output = td_engine_output_tensor(index, bytes);
    if (output == 0) *bytes = 0u;
    return output;
}

/* Inputs of no bytes (a zero dimension) have nothing to load: count them as loaded. */
static void skip_empty_inputs(void)
{
    uint32_t count = engine_input_count();
    uint32_t bytes;
    while (g_input_filled == 0u && g_inputs_loaded < count) {
        (void)engine_input(g_inputs_loaded, &bytes);
        if (bytes != 0u) break;
        ++g_inputs_loaded;
    }
}

/* Input `index` is complete: move on to the next one. */
static void input_complete(uint32_t index)
{
    g_inputs_loaded = index + 1u;
    g_input_filled = 0u;
    skip_empty_inputs();
}

/* Input `index` is being loaded again from offset 0: it and every later input need loading. */
static void input_restart(uint32_t index)
{
    g_inputs_loaded = index;
    g_input_filled = 0u;
}

static void inputs_consumed(void)
{
    g_inputs_loaded = 0u;
    g_input_filled = 0u;
}

/* `key=a,b,c`: one decimal per tensor. */
static void put_key_sizes(const char *key, int inputs, uint32_t count)
{
    put_word(key);
    td_writer_char(&g_tx, '=');
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t bytes;
        if (i > 0u) td_writer_char(&g_tx, ',');
        if (inputs) {
            (void)engine_input(i, &bytes);
        } else {
            (void)engine_output(i, &bytes);
        }
        td_writer_u32(&g_tx, bytes);
    }
}

static int require_engine(const char *id)
{
    if (g_engine_status == 0) return 1;
    line_begin(id, "err");
    put_word("engine");
    put_key_i32("status", g_engine_status);
    line_end();
    return 0;
}

/* ---- commands ---------------------------------------------------------------------------------------------- */

static void cmd_identify(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        reply_error(id, "args");
        return;
    }
    uint32_t inputs = engine_input_count();
    uint32_t outputs = engine_output_count();
    line_begin(id, "ok");
    put_word("id");
    put_key_u32("proto", TD_PROTOCOL_VERSION);
    put_key_str("board", g_cfg->board);
    put_key_str("engine", td_engine_name());
    put_key_str("model", g_cfg->model);
    put_key_str("sha256", g_cfg->model_sha256);
    put_key_str("build", g_cfg->build_id);
    put_key_u32("inputs", inputs);
    put_key_u32("outputs", outputs);
    put_key_sizes("in", 1, inputs);
    put_key_sizes("out", 0, outputs);
    put_key_str("intype", g_cfg->input_types);
    put_key_str("outtype", g_cfg->output_types);
    put_key_u32("line", TD_PROTOCOL_LINE_MAX);
    put_key_u32("maxruns", TD_PROTOCOL_MAX_RUNS);
    put_key_i32("status", g_engine_status);
    line_end();
}

static void reply_index_range(const char *id, const char *key, uint32_t count)
{
    line_begin(id, "err");
    put_word("range");
    put_key_u32(key, count);
    line_end();
}

/* in [<index>] <offset> <hex>: one chunk of input tensor `index` (0 when left out). */
static void cmd_input(const char *id, char **args, uint32_t nargs)
{
    uint32_t index = 0u;
    uint32_t offset;
    if (nargs < 2u || nargs > 3u || (nargs == 3u && td_parse_u32(args[0], &index, 10u) != 0) ||
        td_parse_u32(args[nargs - 2u], &offset, 10u) != 0) {
        reply_error(id, "args");
        return;
    }
    if (!require_engine(id)) return;
    const char *hex = args[nargs - 1u];
    uint32_t hex_len = (uint32_t)strlen(hex);
    if (hex_len == 0u || (hex_len & 1u) != 0u) {
        reply_error(id, "args");
        return;
    }
    for (uint32_t i = 0; i < hex_len; ++i) {
        if (td_hex_value(hex[i]) < 0) {
            reply_error(id, "args");
            return;
        }
    }
    uint32_t count = engine_input_count();
    if (index >= count) {
        reply_index_range(id, "inputs", count);
        return;
    }
    uint32_t input_bytes;
    uint8_t *input = engine_input(index, &input_bytes);
    uint32_t len = hex_len / 2u;
    if (input == 0 || offset > input_bytes || len > input_bytes - offset) {
        line_begin(id, "err");
        put_word("range");
        put_key_u32("size", input_bytes);
        line_end();
        return;
    }
    skip_empty_inputs();
    /* Inputs load in order and each chunk continues its input: anything else means a chunk was lost. Offset 0
     * (re)starts an input once those before it are loaded. */
    int in_order = offset == 0u ? index <= g_inputs_loaded
                                : index == g_inputs_loaded && offset <= g_input_filled;
    if (!in_order) {
        line_begin(id, "err");
        put_word("gap");
        put_key_u32("index", g_inputs_loaded);
        put_key_u32("next", g_input_filled);
        line_end();
        return;
    }
    if (offset == 0u) input_restart(index);
    for (uint32_t i = 0; i < len; ++i) {
        input[offset + i] = (uint8_t)((td_hex_value(hex[2u * i]) << 4) | td_hex_value(hex[2u * i + 1u]));
    }
    if (offset + len > g_input_filled) g_input_filled = offset + len;
    uint32_t next = g_input_filled;
    if (g_input_filled == input_bytes) input_complete(index);
    line_begin(id, "ok");
    put_word("in");
    put_key_u32("index", index);
    put_key_u32("next", next);
    line_end();
}

uint8_t *td_protocol_input_target(uint32_t *bytes)
{
    if (engine_input_count() != 1u) { /* a sensor fills one tensor: models with several inputs load them by `in` */
        *bytes = 0u;
        return 0;
    }
    return engine_input(0u, bytes);
}

void td_protocol_input_loaded(void)
{
    input_complete(0u);
}

static void send_latencies(const char *id, uint32_t first, const uint32_t *values, uint32_t count)
{
    line_begin(id, "data");
    put_word("lat");
    td_writer_char(&g_tx, ' ');
    td_writer_u32(&g_tx, first);
    for (uint32_t i = 0; i < count; ++i) {
        td_writer_char(&g_tx, ' ');
        td_writer_u32(&g_tx, values[i]);
    }
    line_end();
}

static uint32_t now_us(void)
{
    return g_cfg->micros != 0 ? g_cfg->micros() : 0u;
}

static int heartbeat_due(void)
{
    return (uint32_t)(now_us() - g_last_line_us) >= TD_HEARTBEAT_US;
}

uint32_t td_reply_idle_us(void)
{
    return (uint32_t)(now_us() - g_last_line_us);
}

static void invoke_failed(const char *id, int status, uint32_t index, int warmup)
{
    g_has_output = 0;
    line_begin(id, "err");
    put_word("invoke");
    put_key_i32("status", status);
    put_key_u32(warmup ? "warmup" : "run", index);
    line_end();
}

static void cmd_run(const char *id, char **args, uint32_t nargs)
{
    uint32_t runs;
    uint32_t warmup = 0u;
    if (nargs < 1u || nargs > 2u || td_parse_u32(args[0], &runs, 10u) != 0 ||
        (nargs == 2u && td_parse_u32(args[1], &warmup, 10u) != 0)) {
        reply_error(id, "args");
        return;
    }
    if (runs == 0u || runs > TD_PROTOCOL_MAX_RUNS || warmup > TD_PROTOCOL_MAX_WARMUP) {
        line_begin(id, "err");
        put_word("range");
        put_key_u32("maxruns", TD_PROTOCOL_MAX_RUNS);
        put_key_u32("maxwarmup", TD_PROTOCOL_MAX_WARMUP);
        line_end();
        return;
    }
    if (!require_engine(id)) return;
    uint32_t count = engine_input_count();
    skip_empty_inputs();
    if (g_inputs_loaded < count) {
        uint32_t input_bytes;
        (void)engine_input(g_inputs_loaded, &input_bytes);
        line_begin(id, "err");
        put_word("state");
        put_word("input-incomplete");
        put_key_u32("index", g_inputs_loaded);
        put_key_u32("have", g_input_filled);
        put_key_u32("need", input_bytes);
        line_end();
        return;
    }
    /* The first inference runs on the loaded inputs; it may overwrite them (engines plan activations over input
     * memory), so later ones (warm-ups, timed runs) run on what it left there: for timing only. */
    inputs_consumed();
    g_has_output = 0;
    td_engine_profile_reset();
    g_profiled_runs = 0u;
    g_last_line_us = now_us();
    for (uint32_t i = 0; i < warmup; ++i) {
        int status = td_engine_invoke();
        if (status != 0) {
            invoke_failed(id, status, i, 1);
            return;
        }
        if (heartbeat_due()) {
            line_begin(id, "data");
            put_word("warm");
            td_writer_char(&g_tx, ' ');
            td_writer_u32(&g_tx, i + 1u);
            line_end();
        }
    }
    uint32_t latencies[TD_LATENCIES_PER_LINE];
    uint32_t pending = 0u;
    for (uint32_t i = 0; i < runs; ++i) {
        uint32_t start = now_us();
        int status = td_engine_invoke();
        uint32_t elapsed = now_us() - start;
        if (status != 0) {
            invoke_failed(id, status, i, 0);
            return;
        }
        latencies[pending++] = elapsed;
        if (pending == TD_LATENCIES_PER_LINE || i + 1u == runs || heartbeat_due()) {
            send_latencies(id, i + 1u - pending, latencies, pending);
            pending = 0u;
        }
    }
    g_has_output = runs + warmup == 1u; /* an output the device can vouch for: of the loaded inputs */
    g_profiled_runs = runs + warmup;
    line_begin(id, "ok");
    put_word("run");
    put_key_u32("n", runs);
    put_key_u32("w", warmup);
    line_end();
}

/* out [<index>]: output tensor `index` (0 when left out) of the last run. */
static void cmd_output(const char *id, char **args, uint32_t nargs)
{
    uint32_t index = 0u;
    if (nargs > 1u || (nargs == 1u && td_parse_u32(args[0], &index, 10u) != 0)) {
        reply_error(id, "args");
        return;
    }
    if (!require_engine(id)) return;
    uint32_t count = engine_output_count();
    if (index >= count) {
        reply_index_range(id, "outputs", count);
        return;
    }
    uint32_t output_bytes = 0u;
    const uint8_t *output = engine_output(index, &output_bytes);
    if (!g_has_output || output == 0) {
        line_begin(id, "err");
        put_word("state");
        put_word("no-output");
        line_end();
        return;
    }
    for (uint32_t offset = 0; offset < output_bytes; offset += TD_OUTPUT_BYTES_PER_LINE) {
        uint32_t len = output_bytes - offset;
        if (len > TD_OUTPUT_BYTES_PER_LINE) len = TD_OUTPUT_BYTES_PER_LINE;
        line_begin(id, "data");
        put_word("out");
        td_writer_char(&g_tx, ' ');
        td_writer_u32(&g_tx, offset);
        td_writer_char(&g_tx, ' ');
        put_hex_bytes(output + offset, len);
        line_end();
    }
    line_begin(id, "ok");
    put_word("out");
    put_key_u32("index", index);
    put_key_u32("bytes", output_bytes);
    line_end();
}

/* prof: the engine's per-op microseconds summed over the inferences of the last `run` (a profiling build; others
 * answer steps=0). */
static void cmd_profile(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        reply_error(id, "args");
        return;
    }
    if (!require_engine(id)) return;
    uint32_t steps = td_engine_profile_steps();
    uint32_t values[TD_LATENCIES_PER_LINE];
    uint32_t pending = 0u;
    for (uint32_t step = 0; step < steps; ++step) {
        values[pending++] = td_engine_profile_us(step);
        if (pending == TD_LATENCIES_PER_LINE || step + 1u == steps) {
            line_begin(id, "data");
            put_word("prof");
            td_writer_char(&g_tx, ' ');
            td_writer_u32(&g_tx, step + 1u - pending);
            for (uint32_t i = 0; i < pending; ++i) {
                td_writer_char(&g_tx, ' ');
                td_writer_u32(&g_tx, values[i]);
            }
            line_end();
            pending = 0u;
        }
    }
    line_begin(id, "ok");
    put_word("prof");
    put_key_u32("steps", steps);
    put_key_u32("runs", steps > 0u ? g_profiled_runs : 0u);
    line_end();
}

static void cmd_ram(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        reply_error(id, "args");
        return;
    }
    line_begin(id, "ok");
    put_word("ram");
    put_key_u32("stack", td_bsp_stack_high_water());
    put_key_u32("heap", td_bsp_heap_high_water());
    put_key_u32("act", td_engine_activation_bytes());
    put_key_u32("used", td_engine_used_bytes());
    line_end();
}

/* ---- line handling ------------------------------------------------------------------------------------------- */

/* Split in place at spaces; returns the token count (at most max, the rest stays in the last token). */
static uint32_t tokenize(char *s, char **tokens, uint32_t max)
{
    uint32_t n = 0u;
    while (*s != '\0' && n < max) {
        while (*s == ' ') ++s;
        if (*s == '\0') break;
        tokens[n++] = s;
        if (n == max) break;
        while (*s != '\0' && *s != ' ') ++s;
        if (*s == ' ') *s++ = '\0';
    }
    return n;
}

static void handle_command_line(char *line, uint32_t len)
{
    while (len > 0u && (line[len - 1u] == ' ' || line[len - 1u] == '\t')) --len;
    uint32_t start = 0u;
    while (start < len && (line[start] == ' ' || line[start] == '\t' || line[start] == '\0')) ++start;
    if (start == len) return; /* blank lines are harmless: the host sends one before each command */
    line += start;
    len -= start;
    line[len] = '\0';

    if (len < 3u || line[0] != 't' || line[1] != 'd' || line[2] != ' ') {
        reply_error("-", "frame");
        return;
    }
    /* The id is echoed even on a checksum error when it looks like one, so the host need not wait. */
    char id[TD_ID_MAX + 1u] = "-";
    uint32_t id_start = 3u;
    while (id_start < len && line[id_start] == ' ') ++id_start;
    uint32_t id_end = id_start;
    while (id_end < len && line[id_end] != ' ' && line[id_end] != '*') ++id_end;
    if (is_valid_id(line + id_start, id_end - id_start)) {
        memcpy(id, line + id_start, id_end - id_start);
        id[id_end - id_start] = '\0';
    }

    if (len < 9u || line[len - 9u] != '*') {
        reply_error(id, "frame");
        return;
    }
    uint32_t claimed = 0u;
    for (uint32_t i = len - 8u; i < len; ++i) {
        int digit = td_hex_value(line[i]);
        if (digit < 0) {
            reply_error(id, "frame");
            return;
        }
        claimed = (claimed << 4) | (uint32_t)digit;
    }
    uint32_t body_len = len - 9u;
    if (td_crc32_final(td_crc32_update(TD_CRC32_INIT, line, body_len)) != claimed) {
        reply_error(id, "crc");
        return;
    }
    if (id[0] == '-') {
        reply_error("-", "frame");
        return;
    }
    line[body_len] = '\0';

    char *tokens[TD_MAX_TOKENS];
    uint32_t ntokens = tokenize(line + 3, tokens, TD_MAX_TOKENS);
    if (ntokens < 2u) {
        reply_error(id, "frame");
        return;
    }
    const char *verb = tokens[1];
    char **args = tokens + 2;
    uint32_t nargs = ntokens - 2u;
    if (strcmp(verb, "id") == 0) {
        cmd_identify(id, nargs);
    } else if (strcmp(verb, "in") == 0) {
        cmd_input(id, args, nargs);
    } else if (strcmp(verb, "run") == 0) {
        cmd_run(id, args, nargs);
    } else if (strcmp(verb, "out") == 0) {
        cmd_output(id, args, nargs);
    } else if (strcmp(verb, "ram") == 0) {
        cmd_ram(id, nargs);
    } else if (strcmp(verb, "prof") == 0) {
        cmd_profile(id, nargs);
    } else if (g_cfg->extra_command != 0 && g_cfg->extra_command(id, verb, args, nargs)) {
        return;
    } else {
        reply_error(id, "unknown");
    }
}

static void handle_percent_line(char *line, uint32_t len)
{
    line[len] = '\0';
    if (g_cfg->percent_command != 0) {
        g_cfg->percent_command(line, len);
    } else {
        reply_error("-", "unsupported");
    }
}

void td_protocol_feed_byte(uint8_t byte)
{
    if (g_cfg == 0) return;
    if (byte == '\n' || byte == '\r' || byte == '%') {
        if (g_line_overflow) {
            line_begin("-", "err");
            put_word("too-long");
            put_key_u32("max", TD_PROTOCOL_LINE_MAX);
            line_end();
        } else if (byte == '%') {
            handle_percent_line(g_line, g_line_len);
        } else {
            handle_command_line(g_line, g_line_len);
        }
        g_line_len = 0u;
        g_line_overflow = 0;
        return;
    }
    if (g_line_len >= TD_PROTOCOL_LINE_MAX) {
        g_line_overflow = 1; /* drop the rest of this line; answer once when it ends */
        return;
    }
    g_line[g_line_len++] = (char)byte;
}

void td_protocol_feed(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        td_protocol_feed_byte(data[i]);
    }
}

void td_protocol_init(const td_protocol_config *cfg)
{
    g_cfg = cfg;
    g_engine_status = 0;
    g_line_len = 0u;
    g_line_overflow = 0;
    g_inputs_loaded = 0u;
    g_input_filled = 0u;
    g_has_output = 0;
    g_profiled_runs = 0u;
    g_tx.length = 0u;
    g_tx.write = cfg != 0 ? cfg->write : 0;
    g_last_line_us = (cfg != 0 && cfg->micros != 0) ? cfg->micros() : 0u;
}

void td_protocol_announce(int engine_status)
{
    if (g_cfg == 0) return;
    g_engine_status = engine_status;
    if (engine_status == 0) {
        line_begin("-", "ready");
        put_key_u32("proto", TD_PROTOCOL_VERSION);
    } else {
        line_begin("-", "err");
        put_word("engine");
        put_key_i32("status", engine_status);
    }
    line_end();
}
