import ArgumentParser
import MagritteCore

/// `--engine jit|interpreter` (boot, linux).
extension Engine: ExpressibleByArgument {}
