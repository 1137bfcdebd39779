"""Framework script `arduino` of the virtual board: compiles the board-support layer (startup, UART,
clock, syscalls, Arduino API subset) into the program, the sensor stand-ins into a library, and links them with
the board's memory map."""

import os

from SCons.Script import DefaultEnvironment

env = DefaultEnvironment()
platform_dir = env.PioPlatform().get_dir()
bsp_dir = os.path.join(platform_dir, "bsp")
# tinydeploy's shared firmware headers (td_bsp.h) sit beside the platform in firmware/include.
shared_include_dir = os.path.join(os.path.dirname(platform_dir), "include")

env.Append(
    CPPDEFINES=["ARDUINO_TINYDEPLOY_VIRTUAL", ("ARDUINO", 10819)],
    CPPPATH=[os.path.join(bsp_dir, "include")]
    + ([shared_include_dir] if os.path.isdir(shared_include_dir) else []),
)

# `board_build.ldscript` in platformio.ini overrides the board's memory map.
env.Replace(LDSCRIPT_PATH=env.BoardConfig().get("build.ldscript", "") or os.path.join(platform_dir, "ldscripts", "virtual.ld"))
# `board_build.stack_size` sets the stack reserve the linker counts against RAM; the memory sizes come from the
# board file (generated from tinydeploy's board profile), `board_upload.maximum_size` etc. override them.
board = env.BoardConfig()
env.Append(LINKFLAGS=[
    "-Wl,--defsym,__stack_size=%d" % int(board.get("build.stack_size", 4096)),
    "-Wl,--defsym,__td_flash_bytes=%d" % int(board.get("upload.maximum_size")),
    "-Wl,--defsym,__td_ram_bytes=%d" % int(board.get("upload.maximum_ram_size")),
])

env.BuildSources(os.path.join("$BUILD_DIR", "FrameworkTinydeployBSP"), os.path.join(bsp_dir, "src"))
# The sensor libraries' stand-ins (Wire, PDM, the IMUs, the camera, digital pins) as an archive: the linker takes a
# member only when the sketch uses it, so a firmware without sensors carries none of their RAM.
env.Prepend(LIBS=[env.BuildLibrary(os.path.join("$BUILD_DIR", "FrameworkTinydeploySensors"),
                                   os.path.join(bsp_dir, "sensors"))])
