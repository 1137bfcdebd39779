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

#if defined(TD_TFLM_CALIBRATION)
#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_arena_constants.h"
#endif

#if defined(TD_TFLM_PROFILE_STEPS)
#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

/* The clock of the per-op profile, the same the native engine's profile reads (the sketch defines it). */
extern "C" uint32_t td_profile_micros(void);
#endif

namespace {

alignas(16) uint8_t tensor_arena[kTensorArenaSize];
alignas(td_tflm_op_resolver) uint8_t resolver_storage[sizeof(td_tflm_op_resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];

tflite::MicroInterpreter *interpreter = nullptr;

#if defined(TD_TFLM_PROFILE_STEPS)
/* A `flash --profile` build: TFLM's MicroGraph::InvokeSubgraph opens one profiler event around each operator's
 * invoke, in the subgraph's order (none during Init or Prepare). Step k is the k-th outermost event of an
 * Invoke(), i.e. operator k of the main subgraph; events an operator opens inside its own (a subgraph that
 * WHILE, IF or CALL_ONCE invokes) are counted in that operator's time, not as steps. */
class td_op_profiler : public tflite::MicroProfilerInterface {
public:
    uint32_t BeginEvent(const char *tag) override
    {
        (void)tag;
        if (depth_++ != 0u) {
            return kNestedEvent;
        }
        started_ = td_profile_micros();
        return next_step_++;
    }

    void EndEvent(uint32_t handle) override
    {
        uint32_t now = td_profile_micros();
        if (depth_ > 0u) {
            --depth_;
        }
        /* more events than the model has operators must not write past the totals */
        if (handle != kNestedEvent && depth_ == 0u && handle < TD_TFLM_PROFILE_STEPS) {
            totals_[handle] += now - started_;
        }
    }

    void begin_invoke()
    {
        next_step_ = 0u;
        depth_ = 0u;
    }

    /* After a successful Invoke(): an event count other than the model's operators means the steps do not map
     * onto them, and the profile says how many it saw instead (the host refuses a count that differs). */
    void end_invoke()
    {
        if (next_step_ != TD_TFLM_PROFILE_STEPS) {
            unmapped_events_ = next_step_ == 0u ? kNoEvents : next_step_;
        }
    }

    uint32_t steps() const
    {
        if (unmapped_events_ == 0u) {
            return TD_TFLM_PROFILE_STEPS;
        }
        return unmapped_events_ == kNoEvents ? 0u : unmapped_events_;
    }

    uint32_t total_us(uint32_t step) const
    {
        return unmapped_events_ == 0u && step < TD_TFLM_PROFILE_STEPS ? totals_[step] : 0u;
    }

    void reset()
    {
        for (uint32_t step = 0u; step < TD_TFLM_PROFILE_STEPS; ++step) {
            totals_[step] = 0u;
        }
        unmapped_events_ = 0u;
    }

private:
    static constexpr uint32_t kNestedEvent = UINT32_MAX;
    static constexpr uint32_t kNoEvents = UINT32_MAX;
    uint32_t totals_[TD_TFLM_PROFILE_STEPS] = {};
    uint32_t started_ = 0u;
    uint32_t next_step_ = 0u;
    uint32_t depth_ = 0u;
    uint32_t unmapped_events_ = 0u;  // 0: the events map onto the operators; else the count seen (kNoEvents: none)

    TF_LITE_REMOVE_VIRTUAL_DELETE
};

alignas(td_op_profiler) uint8_t profiler_storage[sizeof(td_op_profiler)];
td_op_profiler *profiler = nullptr;
#endif

/* A new interpreter on the first `arena_bytes` of the arena (with the profiler in a profiling build). An earlier
 * one in the same storage is not destroyed: it owns nothing outside the arena, and a half-allocated one's kernels
 * must not be asked to free what they never set up. */
tflite::MicroInterpreter *new_interpreter(const tflite::Model *model, const td_tflm_op_resolver &resolver,
                                          size_t arena_bytes)
{
#if defined(TD_TFLM_PROFILE_STEPS)
    return new (interpreter_storage)
        tflite::MicroInterpreter(model, resolver, tensor_arena, arena_bytes, nullptr, profiler);
#else
    return new (interpreter_storage) tflite::MicroInterpreter(model, resolver, tensor_arena, arena_bytes);
#endif
}

#if defined(TD_TFLM_CALIBRATION)
/* The calibration build reports the smallest arena with which AllocateTensors() succeeds, not arena_used_bytes():
 * while it commits the memory plan TFLM holds buffers it frees before it returns (the allocation info and the
 * planner's lists, ~64 B per tensor on a 32-bit core), so the need can lie hundreds of bytes above
 * arena_used_bytes(). Smaller arenas are not probed: in that window the pinned library does not always fail
 * cleanly (its persistent allocations are checked against the head, not against live temporary buffers, so the
 * planner can be handed a negative size and write outside the arena: a HardFault on keyword_scrambled.tflite).
 * Instead a planner that records the room it was given measures the commit's need on the whole arena. */
size_t smallest_arena_bytes = 0u;
int planner_room_bytes = 0;  // scratch bytes the planner was given at its last Init
bool quiet_log = false;      // a probe that fails is expected: its messages are not sent

class td_measuring_planner : public tflite::GreedyMemoryPlanner {
public:
    TfLiteStatus Init(unsigned char *scratch_buffer, int scratch_buffer_size) override
    {
        planner_room_bytes = scratch_buffer_size;
        /* no room (or "negative" room, see above): plan nothing, so AddBuffer fails cleanly */
        return GreedyMemoryPlanner::Init(scratch_buffer, scratch_buffer_size > 0 ? scratch_buffer_size : 0);
    }

private:
    TF_LITE_REMOVE_VIRTUAL_DELETE
};
static_assert(sizeof(td_measuring_planner) == sizeof(tflite::GreedyMemoryPlanner),
              "the measuring planner must take the arena bytes the default one takes");
td_measuring_planner *measuring_planner = nullptr;  // the last one made

/* An interpreter laid out in the arena exactly as MicroInterpreter's own constructor lays it out (allocator,
 * then the planner in the persistent tail), with the measuring planner. */
tflite::MicroInterpreter *new_measuring_interpreter(const tflite::Model *model, const td_tflm_op_resolver &resolver,
                                                    size_t arena_bytes)
{
    uint8_t *start = tflite::AlignPointerUp(tensor_arena, tflite::MicroArenaBufferAlignment());
    size_t usable = static_cast<size_t>(tensor_arena + arena_bytes - start);
    tflite::SingleArenaBufferAllocator *buffers = tflite::SingleArenaBufferAllocator::Create(start, usable);
    uint8_t *slot = buffers->AllocatePersistentBuffer(sizeof(td_measuring_planner), alignof(td_measuring_planner));
    if (slot == nullptr) {
        return nullptr;
    }
    measuring_planner = new (slot) td_measuring_planner();
    tflite::MicroAllocator *allocator = tflite::MicroAllocator::Create(buffers, measuring_planner);
    if (allocator == nullptr) {
        return nullptr;
    }
#if defined(TD_TFLM_PROFILE_STEPS)
    return new (interpreter_storage) tflite::MicroInterpreter(model, resolver, allocator, nullptr, profiler);
#else
    return new (interpreter_storage) tflite::MicroInterpreter(model, resolver, allocator);
#endif
}

bool allocates(const tflite::Model *model, const td_tflm_op_resolver &resolver, size_t arena_bytes)
{
    tflite::MicroInterpreter *probe = new_measuring_interpreter(model, resolver, arena_bytes);
    return probe != nullptr && probe->AllocateTensors() == kTfLiteOk;
}

/* On the whole arena: the commit's need is what was taken when the planner started plus the planner's lists,
 * one alignment step for where a shorter arena's tail falls; at least arena_used_bytes(). Then confirmed by one
 * allocation at that size, moving up in alignment steps (at most 1 KB) if TFLM still wants more. */
size_t smallest_allocating_arena(const tflite::Model *model, const td_tflm_op_resolver &resolver)
{
    const size_t step = tflite::MicroArenaBufferAlignment();
    tflite::MicroInterpreter *whole = new_measuring_interpreter(model, resolver, kTensorArenaSize);
    if (whole == nullptr || whole->AllocateTensors() != kTfLiteOk || planner_room_bytes <= 0) {
        return kTensorArenaSize;
    }
    size_t used = whole->arena_used_bytes();
    size_t lists = static_cast<size_t>(measuring_planner->GetBufferCount()) *
                   tflite::GreedyMemoryPlanner::per_buffer_size();
    size_t commit = kTensorArenaSize - static_cast<size_t>(planner_room_bytes) + lists + step;
    size_t candidate = (commit > used ? commit : used);
    candidate = (candidate + step - 1u) / step * step;
    for (size_t tries = 0u; tries <= 1024u / step && candidate <= kTensorArenaSize; ++tries, candidate += step) {
        if (allocates(model, resolver, candidate)) {
            return candidate;
        }
    }
    return kTensorArenaSize;
}
#endif

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
#if defined(TD_TFLM_PROFILE_STEPS)
    profiler = new (profiler_storage) td_op_profiler();
#endif
    tflite::MicroInterpreter *candidate = new_interpreter(model, *resolver, kTensorArenaSize);
    if (candidate->AllocateTensors() != kTfLiteOk) {
        return kAllocationFailed;
    }
#if defined(TD_TFLM_CALIBRATION)
    quiet_log = true;
    smallest_arena_bytes = smallest_allocating_arena(model, *resolver);
    quiet_log = false;
    candidate = new_interpreter(model, *resolver, kTensorArenaSize);  // the build runs on the whole arena
    if (candidate->AllocateTensors() != kTfLiteOk) {
        return kAllocationFailed;
    }
#endif
    interpreter = candidate;
    return 0;
}

extern "C" int td_engine_invoke(void)
{
    if (interpreter == nullptr) {
        return -1;
    }
#if defined(TD_TFLM_PROFILE_STEPS)
    profiler->begin_invoke();
    if (interpreter->Invoke() != kTfLiteOk) {
        return -2;
    }
    profiler->end_invoke();
    return 0;
#else
    return interpreter->Invoke() == kTfLiteOk ? 0 : -2;
#endif
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

/* arena_used_bytes(); in a calibration build the smallest arena that allocates (what an arena must hold). */
extern "C" uint32_t td_engine_used_bytes(void)
{
    if (interpreter == nullptr) {
        return 0u;
    }
#if defined(TD_TFLM_CALIBRATION)
    return static_cast<uint32_t>(smallest_arena_bytes);
#else
    return static_cast<uint32_t>(interpreter->arena_used_bytes());
#endif
}

/* The per-op profile of a `flash --profile` build (TD_TFLM_PROFILE_STEPS); other builds time nothing. */
extern "C" uint32_t td_engine_profile_steps(void)
{
#if defined(TD_TFLM_PROFILE_STEPS)
    return profiler == nullptr ? 0u : profiler->steps();
#else
    return 0u;
#endif
}

extern "C" uint32_t td_engine_profile_us(uint32_t step)
{
#if defined(TD_TFLM_PROFILE_STEPS)
    return profiler == nullptr ? 0u : profiler->total_us(step);
#else
    (void)step;
    return 0u;
#endif
}

extern "C" void td_engine_profile_reset(void)
{
#if defined(TD_TFLM_PROFILE_STEPS)
    if (profiler != nullptr) {
        profiler->reset();
    }
#endif
}

extern "C" const char *td_engine_name(void)
{
    return "tflm";
}

#if !defined(ARDUINO_ARDUINO_NANO33BLE)
/* The library defines DebugLog only for the Nano 33 BLE (its system_setup.cpp); elsewhere TFLM's messages
 * go to the serial port here, where the host link skips them as noise. */

extern "C" void DebugLog(const char *text)
{
#if defined(TD_TFLM_CALIBRATION)
    if (quiet_log) {
        return;
    }
#endif
    if (text != nullptr) {
        Serial.write(text);
    }
}
#endif
