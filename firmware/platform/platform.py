"""PlatformIO platform class of the tinydeploy virtual board."""

import shutil

from platformio.public import PlatformBase

TOOLCHAIN = "toolchain-gccarmnoneeabi"


class TinydeployvirtualPlatform(PlatformBase):
    def configure_default_packages(self, variables, targets):
        # Offline, an arm-none-eabi-gcc already on PATH (e.g. Debian's) replaces the registry package,
        # so PlatformIO does not try (and fail, after a long timeout) to download it.
        if not self.get_package(TOOLCHAIN) and shutil.which("arm-none-eabi-gcc"):
            self.packages[TOOLCHAIN]["optional"] = True
        return super().configure_default_packages(variables, targets)
