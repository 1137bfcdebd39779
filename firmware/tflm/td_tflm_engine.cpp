/* The TFLM engine behind td_engine.h: a MicroInterpreter on the generated model (td_tflm_model.h), with an
 * op resolver that holds exactly the model's ops and a statically allocated tensor arena.
 * The interpreter and resolver are built in place in td_engine_init(): no global constructors and no
 * function-local statics (those need __dso_handle and guard code on bare-metal startups). */
#include <stddef.h>
#include <stdint.h>

#include <new>

#include <Arduino.h>

#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "td_engine.h"
#include "td_tflm_model.h"

namespace {

alignas(16) uint8_t tensor_arena[kTensorArenaSize];
alignas(td_tflm_op_resolver) uint8_t resolver_storage[sizeof(td_tflm_op_resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];

tflite::MicroInterpreter *interpreter = nullptr;

enum : int {
    kSchemaMismatch = -1,
    kOpsNotRegistered = -2,
    kAllocationFailed = -3,
};

/* The tensor's data and size; NULL and 0 when the interpreter did not start or the index is out of range. */
uint8_t *tensor_bytes(TfLiteTensor *tensor, uint32_t *bytes)
{
    if (tensor == nullptr || tensor->data.raw == nullptr) {
        if (bytes != nullptr) {
            *bytes = 0u;
        }
        return nullptr;
    }
    if (bytes != nullptr) {
        *bytes = static_cast<uint32_t>(tensor->bytes);
    }
    return reinterpret_cast<uint8_t *>(tensor->data.raw);
}

}  // namespace

extern "C" int td_engine_init(void)
{
    if (interpreter != nullptr) {
        return 0;
    }
    const tflite::Model *model = tflite::GetModel(td_tflm_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return kSchemaMismatch;
    }
    td_tflm_op_resolver *resolver = new (resolver_storage) td_tflm_op_resolver();
    if (td_tflm_register_ops(*resolver) != kTfLiteOk) {
        return kOpsNotRegistered;
    }
    tflite::MicroInterpreter *candidate =
        new (interpreter_storage) tflite::MicroInterpreter(model, *resolver, tensor_arena, kTensorArenaSize);
    if (candidate->AllocateTensors() != kTfLiteOk) {
        return kAllocationFailed;
    }
    interpreter = candidate;
    return 0;
}

extern "C" int td_engine_invoke(void)
{
    if (interpreter == nullptr) {
        return -1;
    }
    return interpreter->Invoke() == kTfLiteOk ? 0 : -2;
}

extern "C" uint32_t td_engine_input_count(void)
{
    return interpreter == nullptr ? 0u : static_cast<uint32_t>(interpreter->inputs_size());
}

extern "C" uint32_t td_engine_output_count(void)
{
    return interpreter == nullptr ? 0u : static_cast<uint32_t>(interpreter->outputs_size());
}

/* Every input and output of any TFLite type: the protocol moves raw bytes, the host knows their types. */
extern "C" uint8_t *td_engine_input_tensor(uint32_t index, uint32_t *bytes)
{
    TfLiteTensor *tensor = index < td_engine_input_count() ? interpreter->input(index) : nullptr;
    return tensor_bytes(tensor, bytes);
}

extern "C" const uint8_t *td_engine_output_tensor(uint32_t index, uint32_t *bytes)
{
    TfLiteTensor *tensor = index < td_engine_output_count() ? interpreter->output(index) : nullptr;
    return tensor_bytes(tensor, bytes);
}

extern "C" int8_t *td_engine_input(uint32_t *bytes)
{
    return reinterpret_cast<int8_t *>(td_engine_input_tensor(0u, bytes));
}

extern "C" const int8_t *td_engine_output(uint32_t *bytes)
{
    return reinterpret_cast<const int8_t *>(td_engine_output_tensor(0u, bytes));
}

extern "C" uint32_t td_engine_activation_bytes(void)
{
    return static_cast<uint32_t>(kTensorArenaSize);
}

extern "C" uint32_t td_engine_used_bytes(void)
{
    return interpreter == nullptr ? 0u : static_cast<uint32_t>(interpreter->arena_used_bytes());
}

/* No per-op profile from the TFLM engine yet (TFLM's MicroProfiler would give one). */
extern "C" uint32_t td_engine_profile_steps(void)
{
    return 0u;
}

extern "C" uint32_t td_engine_profile_us(uint32_t step)
{
    (void)step;
    return 0u;
}

extern "C" void td_engine_profile_reset(void) {}

extern "C" const char *td_engine_name(void)
{
    return "tflm";
}

#if !defined(ARDUINO_ARDUINO_NANO33BLE)
/* The library defines DebugLog only for the Nano 33 BLE (its system_setup.cpp); elsewhere TFLM's messages
 * go to the serial port here, where the host link skips them as noise. */

extern "C" void DebugLog(const char *text)
{
    if (text != nullptr) {
        Serial.write(text);
    }
}
#endif
