"""What the machine has: its physical memory, for up-front refusals of oversized work."""

import os

__all__ = ["physical_memory"]


def physical_memory():
    """Physical memory of the machine in bytes, or None where the system does not say.

    Read with ``os.sysconf`` (Linux, macOS and other POSIX systems). Used to refuse work
    whose estimated memory would not fit (`galcam.inference.plan_image`,
    `galcam.datasets.simulate_mosaic`) before it starts, instead of minutes later by the
    system's out-of-memory killer.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return int(total) if total > 0 else None
