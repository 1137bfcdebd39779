/* The one interface between the device side of the serial protocol and an inference engine.
 * Implemented by the native engine's generated model source and by the TFLM glue; the protocol and the
 * sketch call only these functions. Single input and single output tensor, int8 (or raw bytes). */
#ifndef TD_ENGINE_H
#define TD_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Prepare the engine; 0 on success, a negative code otherwise. Called once from setup(). */
int td_engine_init(void);

/* Run one inference on the current input buffer; 0 on success. */
int td_engine_invoke(void);

/* The input tensor's buffer and size in bytes. The caller fills it before every td_engine_invoke()
 * (engines may reuse the input memory for activations). */
int8_t *td_engine_input(uint32_t *bytes);

/* The output tensor of the last invoke and its size in bytes. */
const int8_t *td_engine_output(uint32_t *bytes);

/* RAM the engine reserves for the model: the planned activation buffer (native, including scratch) or the
 * tensor arena (TFLM). */
uint32_t td_engine_activation_bytes(void);

/* RAM the engine actually used of that: equal to the above for the native engine, arena_used_bytes() for TFLM. */
uint32_t td_engine_used_bytes(void);

/* "native" or "tflm". */
const char *td_engine_name(void);

#ifdef __cplusplus
}
#endif

#endif /* TD_ENGINE_H */
