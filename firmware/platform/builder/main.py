"""SCons build script of the tinydeploy virtual board: toolchain, Cortex-M4F flags, and an upload
target that starts QEMU on the built ELF (the command line lives in boards/virtual.json, "qemu")."""

import shlex
import subprocess
import sys

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.ARM\.exidx|\.ARM\.extab|\.init_arrays)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack_reserve)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)

cpu_flags = [
    "-mcpu=%s" % board.get("build.cpu", "cortex-m4"),
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
]

env.Append(
    ASFLAGS=cpu_flags + ["-x", "assembler-with-cpp"],
    CCFLAGS=cpu_flags + ["-Os", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra"],
    CFLAGS=["-std=gnu11"],
    CXXFLAGS=["-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"],
    CPPDEFINES=[("F_CPU", "$BOARD_F_CPU")],
    LINKFLAGS=cpu_flags
    + ["-Os", "--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections", "-Wl,-Map,\"${BUILD_DIR}/firmware.map\""],
    LIBS=["stdc++", "m", "c", "gcc"],
)

# C++ is linked by the C++ driver, as for every Arduino core.
env.Replace(LINK="$CXX")

if not env.get("PIOFRAMEWORK"):
    sys.stderr.write("Error: the tinydeploy virtual board needs `framework = arduino` (its board-support layer)\n")
    env.Exit(1)

target_elf = env.BuildProgram()
AlwaysBuild(env.Alias("nobuild", target_elf))
target_size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))


def qemu_command(elf_path):
    qemu = board.get("qemu")
    return [qemu["program"]] + [arg.replace("{elf}", elf_path) for arg in qemu["args"]]


def start_qemu(target, source, env):  # noqa: ARG001 (SCons action signature)
    command = qemu_command(str(source[0]))
    print("Starting QEMU; the UART waits for a client on the TCP port QEMU prints; Ctrl-C stops it:")
    print(" ".join(shlex.quote(arg) for arg in command))
    sys.stdout.flush()
    try:
        return subprocess.call(command)
    except FileNotFoundError:
        sys.stderr.write("Error: %s not found; install QEMU (Debian: apt-get install qemu-system-arm)\n" % command[0])
        return 1


AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(start_qemu, "Uploading: starting QEMU on $SOURCE")))
Default([target_elf, target_size])
