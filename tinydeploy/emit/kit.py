"""A kit's part of a firmware project: the sensor driver (firmware/kit/td_kit.cpp) with its settings generated from
the kit profile, and the pinned Arduino libraries for the real board (the virtual board has stand-ins with the
same API in its board-support layer, so the same sources build for both)."""

from __future__ import annotations

from tinydeploy.emit.project import AppPart
from tinydeploy.emit.render import render
from tinydeploy.kits import Kit, Revision
from tinydeploy.paths import firmware_dir
from tinydeploy.sensors.stimulus import NO_INPUT, InputMapping

TD_SENSORS_MAX_MIC_SAMPLES = 4096  # firmware/protocol/td_sensors.h: the `mic` command's largest capture


def kit_part(kit: Kit, revision: Revision, mapping: InputMapping = NO_INPUT) -> AppPart:
    """The kit self-test's driver (no mapping), or a replay firmware's (the model's input from mapping.sensor)."""
    resolution, fmt, width, height, bytes_per_pixel = kit.camera_mode
    camera = {"resolution": resolution, "format": fmt, "width": width, "height": height,
              "bytes_per_pixel": bytes_per_pixel}
    self_test = mapping.sensor == NO_INPUT.sensor  # a replay firmware keeps only its input sensor's buffer
    frame_bytes = width * height * bytes_per_pixel if self_test or mapping.sensor == "camera" else 0
    config = render("kit/td_kit_config.h.j2", kit=kit, revision=revision, camera=camera, input=mapping,
                    frame_bytes=frame_bytes, mic_capture=TD_SENSORS_MAX_MIC_SAMPLES if self_test else 0,
                    mic_rate=int(kit.part("microphone").get("sample_rate_hz", 16000)),
                    button_pin=int(kit.part("button").get("pin", -1)) if "button" in kit.parts else -1)
    files = {f"src/{path.name}": path.read_bytes() for path in sorted((firmware_dir() / "kit").glob("*"))
             if path.suffix in (".cpp", ".h")}
    files["src/td_kit_config.h"] = config.encode()
    mine = {_library_name(dependency) for dependency in kit.libraries(revision)}
    others = sorted({_library_name(dependency) for other in kit.revisions.values() for dependency in other.lib_deps}
                    - mine)  # the other revisions' IMU libraries define IMU too
    return AppPart(f"kit {kit.name} ({revision.name}: {revision.imu})", files, kit.libraries(revision), others)


def _library_name(dependency: str) -> str:
    """owner/Name@version -> Name"""
    return dependency.rsplit("/", 1)[-1].split("@", 1)[0]
