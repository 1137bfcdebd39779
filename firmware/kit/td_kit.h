/* The kit self-test's sensor driver (td_kit.cpp): the sketch hands it to the protocol's sensor commands. */
#ifndef TD_KIT_H
#define TD_KIT_H

#include "td_sensors.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const td_sensor_driver td_kit_driver;

#ifdef __cplusplus
}
#endif

#endif /* TD_KIT_H */
