"""Running the same training under ``torchrun``: process group, ranks, collectives.

`galcam.training.train_weak_model` runs unchanged as one process or under
``torchrun --nproc_per_node N`` (DistributedDataParallel). `DistContext.from_env`
reads the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), initialises the process group (``nccl`` on GPUs,
``gloo`` on CPUs) and picks the device of this process (``cuda:LOCAL_RANK`` on GPUs).
Without those variables it is a single-process context whose collectives do nothing.
"""

import logging
import os

import torch
import torch.distributed as dist

from ..models import resolve_device

__all__ = ["DistContext"]

log = logging.getLogger(__name__)


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={value!r} is not an integer "
                           "(is this a torchrun launch?)") from None


class DistContext:
    """Rank, world size and device of this process, with the collectives training needs.

    Use `from_env`; the constructor makes a single-process context.

    Attributes
    ----------
    rank, world_size, local_rank : int
    device : `torch.device`
    backend : str or None
        ``'gloo'`` or ``'nccl'`` when distributed, else None.
    """

    def __init__(self, device, *, rank=0, world_size=1, local_rank=0, backend=None,
                 owns_group=False):
        self.device = device
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend
        self._owns_group = owns_group

    @property
    def distributed(self):
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self):
        """True on rank 0, the only process that writes files and shows progress."""
        return self.rank == 0

    def __repr__(self):
        return (f"DistContext(rank={self.rank}, world_size={self.world_size}, "
                f"device={self.device}, backend={self.backend})")

    @classmethod
    def from_env(cls, device="auto"):
        """Detect a torchrun launch and initialise the process group if needed.

        Parameters
        ----------
        device : str or `torch.device`
            ``'auto'``: under torchrun ``cuda:LOCAL_RANK`` if CUDA is available, else the
            CPU; in a single process see `galcam.models.resolve_device`. ``'cpu'`` forces
            the CPU (and the gloo backend).

        Returns
        -------
        `DistContext`
        """
        world = _env_int("WORLD_SIZE", 1)
        if world <= 1:
            return cls(resolve_device(device))
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        rank = _env_int("RANK", 0)
        local_rank = _env_int("LOCAL_RANK", 0)
        request = str(device).strip().lower() if isinstance(device, str) else device
        if request == "auto":
            use_cuda = torch.cuda.is_available()
            dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        else:
            dev = resolve_device(device)
            if dev.type == "cuda" and dev.index is None:
                dev = torch.device("cuda", local_rank)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        owns = False
        if not dist.is_initialized():
            if backend == "gloo" and not dist.is_gloo_available():
                raise RuntimeError("torch.distributed has no gloo backend for CPU training")
            dist.init_process_group(backend=backend, rank=rank, world_size=world)
            owns = True
        elif dist.get_world_size() != world:
            raise RuntimeError(f"the process group has {dist.get_world_size()} processes but "
                               f"WORLD_SIZE={world}")
        else:
            backend = dist.get_backend()
        if rank == 0:
            log.info("distributed training: %d processes, backend %s, device of rank 0: %s",
                     world, backend, dev)
        return cls(dev, rank=rank, world_size=world, local_rank=local_rank, backend=backend,
                   owns_group=owns)

    def barrier(self):
        """Wait for every process (no-op in a single process)."""
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def all_reduce_sum(self, values):
        """Sum a list of floats over processes."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self.device if self.backend == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()

    def all_gather_object(self, obj):
        """A list with every process's ``obj``, in rank order."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, module, *, find_unused_parameters=False):
        """Wrap a module in DistributedDataParallel when distributed (else return it)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        kwargs = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
        return DistributedDataParallel(module, find_unused_parameters=find_unused_parameters,
                                       **kwargs)

    def close(self):
        """Destroy the process group if this context created it."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False
