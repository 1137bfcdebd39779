/* Device side of the tinydeploy serial protocol (docs/protocol.md): bounded line reader, command
 * dispatch, framed and checksummed replies. Portable C99, no heap, no printf; the board supplies the
 * byte writer and the microsecond clock. */
#ifndef TD_PROTOCOL_H
#define TD_PROTOCOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TD_PROTOCOL_VERSION 2

/* Longest command line accepted, terminator excluded; longer lines are discarded with an error reply. */
#ifndef TD_PROTOCOL_LINE_MAX
#define TD_PROTOCOL_LINE_MAX 256
#endif

/* Bounds of `run N W`, so one command cannot block the device for ever. */
#ifndef TD_PROTOCOL_MAX_RUNS
#define TD_PROTOCOL_MAX_RUNS 10000u
#endif
#ifndef TD_PROTOCOL_MAX_WARMUP
#define TD_PROTOCOL_MAX_WARMUP 1000u
#endif

typedef struct td_protocol_config {
    const char *board;        /* board profile name */
    const char *model;        /* model name */
    const char *model_sha256; /* hex digest (or a prefix of it) of the .tflite file */
    const char *build_id;     /* identifies the exact firmware sources */
    /* Sends bytes to the host; must send all of them (may block). */
    void (*write)(const char *data, uint32_t len);
    /* Free-running microsecond clock; wraps at 2^32. */
    uint32_t (*micros)(void);
    /* The element type of each input and output tensor, comma-separated in model order ("int8,int16"), as the
     * identify reply reports them; the engine reports the sizes. */
    const char *input_types;
    const char *output_types;
    /* Optional handler for lines terminated by '%' (the MLPerf Tiny / EEMBC runner's commands); NULL: such a
     * line gets an error reply. The line excludes the '%'. */
    void (*percent_command)(const char *line, uint32_t len);
    /* Optional handler for verbs the protocol itself does not know (e.g. td_sensors.c's sensor commands): returns
     * 1 when it answered the command (with the td_reply_* functions below), 0 to get the `unknown` error. It sees
     * checked commands only (a valid id, a matching CRC); at most 4 arguments, the fourth holding the rest of the
     * line. */
    int (*extra_command)(const char *id, const char *verb, char **args, uint32_t nargs);
} td_protocol_config;

/* Keep cfg (the struct and its strings must outlive the protocol). Call after td_engine_init(). */
void td_protocol_init(const td_protocol_config *cfg);

/* Announce the boot: a `ready` line when engine_status is 0, else an `err engine` line; inference commands
 * then answer errors while identify and ram keep working. */
void td_protocol_announce(int engine_status);

/* Feed bytes received from the host; complete commands run here (synchronously). */
void td_protocol_feed_byte(uint8_t byte);
void td_protocol_feed(const uint8_t *data, uint32_t len);

/* Write one framed, checksummed line `@td - <text>` (text is sent as is: the caller keeps it to printable
 * ASCII without '*'), e.g. for a board's own diagnostics. */
void td_protocol_send_line(const char *text);

/* Replies for an extra_command handler: td_reply_begin(id, "ok" | "data" | "err"), then words and key=value pairs,
 * then td_reply_end() (adds the CRC). Values of td_reply_key_str are escaped; words are sent as they are (keep them
 * to printable ASCII without spaces or '*'). */
void td_reply_begin(const char *id, const char *kind);
void td_reply_word(const char *word);
void td_reply_u32(uint32_t value);
void td_reply_i32(int32_t value);
void td_reply_hex(const uint8_t *data, uint32_t len);
void td_reply_key_u32(const char *key, uint32_t value);
void td_reply_key_i32(const char *key, int32_t value);
void td_reply_key_str(const char *key, const char *value);
void td_reply_end(void);
/* One `err <code>` line. */
void td_reply_error(const char *id, const char *code);
/* Where a command that loads the input itself (td_sensors.c's `sense`) writes it: the engine's input tensor, *bytes
 * long; NULL when the engine did not start or the model has several inputs. Call td_protocol_input_loaded() once
 * the whole tensor is written: `run` then takes it as if it had come in `in` chunks. */
uint8_t *td_protocol_input_target(uint32_t *bytes);
void td_protocol_input_loaded(void);
/* Microseconds since the last reply line (for a long command's heartbeat: send a line at least every second). */
uint32_t td_reply_idle_us(void);

#ifdef __cplusplus
}
#endif

#endif /* TD_PROTOCOL_H */
