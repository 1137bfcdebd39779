/* MLPerf Tiny / EEMBC runner commands (performance mode) on top of td_engine.h; see td_mlperf.h.
 * Portable C99, no heap, no printf: replies are formatted here and written through the protocol's writer. */
#include "td_mlperf.h"
#include "td_format.h"

#include <string.h>

#include "td_engine.h"
#include "td_writer.h"

#define TD_MLPERF_TX_BUFFER 64u
#define TD_MLPERF_MAX_TOKENS 4u
#define TD_MLPERF_PRINT_PER_LINE 8u

static const td_protocol_config *g_cfg;
static uint32_t g_db_expected; /* bytes announced by `db load N`; 0 = no load started */
static uint32_t g_db_loaded;
static int g_has_results;

static char g_tx_buffer[TD_MLPERF_TX_BUFFER];
static td_writer g_tx = {g_tx_buffer, TD_MLPERF_TX_BUFFER, 0u, 0u, 0, 0};

/* ---- output ------------------------------------------------------------------------------------------------ */

/* Names go inside [...]: keep printable ASCII and leave out the brackets and the runner's terminator. */
static void put_bracket_safe(const char *s)
{
    if (s == 0) {
        return;
    }
    for (; *s != '\0'; ++s) {
        char c = *s;
        td_writer_char(&g_tx, (c > ' ' && c < 0x7F && c != '[' && c != ']' && c != '%') ? c : '_');
    }
}

static void end_line(void)
{
    td_writer_char(&g_tx, '\r');
    td_writer_char(&g_tx, '\n');
    td_writer_flush(&g_tx);
}

static void line(const char *text)
{
    td_writer_str(&g_tx, text);
    end_line();
}

static uint32_t now_us(void)
{
    return g_cfg->micros != 0 ? g_cfg->micros() : 0u;
}

static void timestamp(void)
{
    uint32_t t = now_us();
    td_writer_str(&g_tx, "m-lap-us-");
    td_writer_u32(&g_tx, t);
    end_line();
}

/* ---- parsing ------------------------------------------------------------------------------------------------- */

static uint32_t tokenize(char *s, char **tokens, uint32_t max)
{
    uint32_t n = 0u;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t') ++s;
        if (*s == '\0') break;
        if (n == max) return max + 1u; /* too many: the caller rejects the command */
        tokens[n++] = s;
        while (*s != '\0' && *s != ' ' && *s != '\t') ++s;
        if (*s != '\0') *s++ = '\0';
    }
    return n;
}

/* ---- the input buffer ----------------------------------------------------------------------------------------- */

/* Where `db` bytes go: the engine's input tensor itself (no copy, so RAM holds the input once). The runner's
 * protocol carries one input: a model with several has none here. */
static uint8_t *db_buffer(uint32_t *capacity)
{
    uint32_t input_bytes = 0u;
    uint8_t *input = td_engine_input_count() == 1u ? td_engine_input_tensor(0u, &input_bytes) : 0;
    if (input == 0) input_bytes = 0u;
    *capacity = input_bytes;
    return input;
}

static void cmd_db(char **args, uint32_t nargs)
{
    uint32_t capacity;
    uint8_t *buffer = db_buffer(&capacity);
    if (nargs == 0u) {
        line("e-[Command 'db' requires a subcommand]");
        return;
    }
    if (strcmp(args[0], "load") == 0) {
        uint32_t n;
        if (nargs != 2u || td_parse_u32(args[1], &n, 0u) != 0 || n == 0u) {
            line("e-[Command 'db load' requires the # of bytes (>0)]");
            return;
        }
        if (buffer == 0 || n != capacity) {
            td_writer_str(&g_tx, "e-[db load ");
            td_writer_u32(&g_tx, n);
            td_writer_str(&g_tx, ": the model's input tensor takes ");
            td_writer_u32(&g_tx, capacity);
            td_writer_str(&g_tx, " bytes (raw int8)]");
            end_line();
            g_db_expected = 0u;
            return;
        }
        g_db_expected = n;
        g_db_loaded = 0u;
        td_writer_str(&g_tx, "m-[Expecting ");
        td_writer_u32(&g_tx, n);
        td_writer_str(&g_tx, " bytes]");
        end_line();
        return;
    }
    if (strcmp(args[0], "print") == 0) {
        uint32_t count = 16u;
        uint32_t offset = 0u;
        if (nargs > 3u || (nargs >= 2u && td_parse_u32(args[1], &count, 0u) != 0) ||
            (nargs == 3u && td_parse_u32(args[2], &offset, 0u) != 0)) {
            line("e-[Usage: db print [N=16] [offset=0]]");
            return;
        }
        if (buffer == 0 || offset > capacity) {
            line("e-[db print: offset outside the buffer]");
            return;
        }
        if (count > capacity - offset) count = capacity - offset;
        for (uint32_t i = 0; i < count; ++i) {
            static const char kHex[] = "0123456789abcdef";
            if (i % TD_MLPERF_PRINT_PER_LINE == 0u) td_writer_str(&g_tx, "m-buffer-");
            uint8_t b = buffer[offset + i];
            td_writer_char(&g_tx, kHex[b >> 4]);
            td_writer_char(&g_tx, kHex[b & 0x0Fu]);
            if ((i + 1u) % TD_MLPERF_PRINT_PER_LINE == 0u || i + 1u == count) {
                end_line();
            } else {
                td_writer_char(&g_tx, '-');
            }
        }
        return;
    }
    if (nargs != 1u) {
        line("e-[Command 'db' takes one run of hex digits]");
        return;
    }
    const char *hex = args[0];
    uint32_t digits = (uint32_t)strlen(hex);
    if ((digits & 1u) != 0u) {
        line("e-[Insufficient number of hex digits]");
        return;
    }
    for (uint32_t i = 0; i < digits; ++i) {
        if (td_hex_value(hex[i]) < 0) {
            line("e-[Invalid hex digit]");
            return;
        }
    }
    if (g_db_expected == 0u || buffer == 0) {
        line("e-[Send 'db load N' first]");
        return;
    }
    for (uint32_t i = 0; i < digits && g_db_loaded < g_db_expected; i += 2u) {
        buffer[g_db_loaded++] = (uint8_t)((td_hex_value(hex[i]) << 4) | td_hex_value(hex[i + 1u]));
    }
    if (g_db_loaded == g_db_expected) {
        line("m-load-done"); /* further digits are ignored, as the reference firmware does */
    }
}

static void results(void)
{
    uint32_t output_bytes = 0u;
    const int8_t *output = td_engine_output(&output_bytes);
    if (!g_has_results || output == 0) {
        line("e-[No results: run 'infer' first]");
        return;
    }
    td_writer_str(&g_tx, "m-results-[");
    for (uint32_t i = 0; i < output_bytes; ++i) {
        if (i > 0u) td_writer_char(&g_tx, ',');
        td_writer_i32(&g_tx, output[i]);
    }
    td_writer_char(&g_tx, ']');
    end_line();
}

/* The first inference of `infer` runs on the loaded input and may overwrite it (engines plan activations over input
 * memory): later ones time the model on what it left there, and a new `db load` is needed before the next infer. */
static int invoke_checked(uint32_t index, int warmup)
{
    int status = td_engine_invoke();
    if (status != 0) {
        g_has_results = 0;
        td_writer_str(&g_tx, "e-[Inference failed: status ");
        td_writer_i32(&g_tx, status);
        td_writer_str(&g_tx, warmup ? " in warm-up " : " in run ");
        td_writer_u32(&g_tx, index);
        td_writer_char(&g_tx, ']');
        end_line();
    }
    return status;
}

static void cmd_infer(char **args, uint32_t nargs)
{
    uint32_t runs = 1u;
    uint32_t warmup = 10u; /* the reference firmware's default */
    if (nargs > 2u || (nargs >= 1u && td_parse_u32(args[0], &runs, 0u) != 0) ||
        (nargs == 2u && td_parse_u32(args[1], &warmup, 0u) != 0)) {
        line("e-[Usage: infer N [W]]");
        return;
    }
    if (runs == 0u || runs > TD_MLPERF_MAX_INFER || warmup > TD_MLPERF_MAX_WARMUP) {
        td_writer_str(&g_tx, "e-[infer: N must be 1..");
        td_writer_u32(&g_tx, TD_MLPERF_MAX_INFER);
        td_writer_str(&g_tx, " and W at most ");
        td_writer_u32(&g_tx, TD_MLPERF_MAX_WARMUP);
        td_writer_char(&g_tx, ']');
        end_line();
        return;
    }
    uint32_t capacity;
    if (db_buffer(&capacity) == 0) {
        line("e-[The inference engine is not ready]");
        return;
    }
    if (g_db_expected == 0u || g_db_loaded < g_db_expected) {
        td_writer_str(&g_tx, "e-[Input incomplete: ");
        td_writer_u32(&g_tx, g_db_loaded);
        td_writer_str(&g_tx, " of ");
        td_writer_u32(&g_tx, capacity);
        td_writer_str(&g_tx, " bytes loaded]");
        end_line();
        return;
    }
    g_db_loaded = 0u; /* consumed by the first inference */
    g_db_expected = 0u;
    td_writer_str(&g_tx, "m-warmup-start-");
    td_writer_u32(&g_tx, warmup);
    end_line();
    for (uint32_t i = 0; i < warmup; ++i) {
        if (invoke_checked(i, 1) != 0) return;
    }
    line("m-warmup-done");
    td_writer_str(&g_tx, "m-infer-start-");
    td_writer_u32(&g_tx, runs);
    end_line();
    timestamp();
    for (uint32_t i = 0; i < runs; ++i) {
        if (invoke_checked(i, 0) != 0) return;
    }
    timestamp();
    g_has_results = 1;
    line("m-infer-done");
    results();
}

static void model_id(void)
{
    /* The runner picks its data set by the model id (kws01, vww01, ic01, ad01); the MLPerf Tiny reference
     * models' file names map to them, any other model reports its own name. */
    static const char *const kKnown[][2] = {
        {"kws", "kws01"}, {"vww", "vww01"}, {"ad01", "ad01"}, {"pretrainedResnet", "ic01"}, {"ic01", "ic01"},
    };
    const char *name = g_cfg->model != 0 ? g_cfg->model : "";
    for (uint32_t i = 0; i < sizeof(kKnown) / sizeof(kKnown[0]); ++i) {
        if (strncmp(name, kKnown[i][0], strlen(kKnown[i][0])) == 0) {
            name = kKnown[i][1];
            break;
        }
    }
    td_writer_str(&g_tx, "m-model-[");
    put_bracket_safe(name);
    td_writer_char(&g_tx, ']');
    end_line();
}

/* ---- dispatch ------------------------------------------------------------------------------------------------ */

void td_mlperf_command(const td_protocol_config *cfg, const char *text, uint32_t len)
{
    char buffer[TD_PROTOCOL_LINE_MAX + 1u];
    char *tokens[TD_MLPERF_MAX_TOKENS];
    if (cfg == 0) return;
    g_cfg = cfg;
    g_tx.length = 0u;
    g_tx.write = cfg->write;
    if (len > TD_PROTOCOL_LINE_MAX) len = TD_PROTOCOL_LINE_MAX;
    memcpy(buffer, text, len);
    buffer[len] = '\0';
    uint32_t ntokens = tokenize(buffer, tokens, TD_MLPERF_MAX_TOKENS);
    if (ntokens > TD_MLPERF_MAX_TOKENS) {
        line("e-[Too many arguments]");
    } else if (ntokens == 0u) {
        /* an empty command still gets its m-ready, so a runner can probe with a bare '%' */
    } else if (strcmp(tokens[0], "name") == 0) {
        td_writer_str(&g_tx, "m-name-dut-[tinydeploy-");
        put_bracket_safe(cfg->board);
        td_writer_char(&g_tx, ']');
        end_line();
    } else if (strcmp(tokens[0], "profile") == 0) {
        line("m-profile-[tinydeploy MLPerf Tiny performance mode]");
        model_id();
    } else if (strcmp(tokens[0], "timestamp") == 0) {
        timestamp();
    } else if (strcmp(tokens[0], "db") == 0) {
        cmd_db(tokens + 1, ntokens - 1u);
    } else if (strcmp(tokens[0], "infer") == 0) {
        cmd_infer(tokens + 1, ntokens - 1u);
    } else if (strcmp(tokens[0], "results") == 0) {
        results();
    } else if (strcmp(tokens[0], "help") == 0) {
        line("name | profile | timestamp | db load N | db HH[HH]* | db print [N] [offset] | infer N [W=10] | results");
    } else {
        td_writer_str(&g_tx, "e-[Unknown command: ");
        put_bracket_safe(tokens[0]);
        td_writer_char(&g_tx, ']');
        end_line();
    }
    line("m-ready");
}
