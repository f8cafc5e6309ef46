"""The factory line: batch prepare / inject / verify with resume, and the virtual device farm.

See ``docs/factory-line.md``. Entry points: :class:`provkit.line.batch.Batch` and
:class:`provkit.line.farm.DeviceFarm`.
"""
