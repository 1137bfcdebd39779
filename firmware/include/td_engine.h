/* The one interface between the device side of the serial protocol and an inference engine.
 * Implemented by the native engine's generated model source and by the TFLM glue; the protocol and the
 * sketch call only these functions. A model has one or more input and output tensors, each raw bytes in the
 * model's element type (int8, int16, float32, ...). */
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

/* How many input and output tensors the model has. */
uint32_t td_engine_input_count(void);
uint32_t td_engine_output_count(void);

/* Input tensor `index` (model order): its buffer and size in bytes, NULL and 0 for an index out of range. The
 * caller fills every input before every td_engine_invoke() (engines may reuse input memory for activations). */
uint8_t *td_engine_input_tensor(uint32_t index, uint32_t *bytes);

/* Output tensor `index` of the last invoke and its size in bytes, NULL and 0 for an index out of range. */
const uint8_t *td_engine_output_tensor(uint32_t index, uint32_t *bytes);

/* Input and output tensor 0, for sketches written against one tensor (the protocol uses the indexed forms). */
int8_t *td_engine_input(uint32_t *bytes);
const int8_t *td_engine_output(uint32_t *bytes);

/* RAM the engine reserves for the model: the planned activation buffer (native, including scratch) or the
 * tensor arena (TFLM). */
uint32_t td_engine_activation_bytes(void);

/* RAM the engine actually used of that: equal to the above for the native engine, arena_used_bytes() for TFLM. */
uint32_t td_engine_used_bytes(void);

/* Per-op profile (a build made with `flash --profile`): how many steps the engine times (0: this build does not
 * profile), the microseconds spent in step `step` summed over the invokes since td_engine_profile_reset(), and the
 * reset. Steps are the model's operators in order. */
uint32_t td_engine_profile_steps(void);
uint32_t td_engine_profile_us(uint32_t step);
void td_engine_profile_reset(void);

/* "native" or "tflm". */
const char *td_engine_name(void);

#ifdef __cplusplus
}
#endif

#endif /* TD_ENGINE_H */
