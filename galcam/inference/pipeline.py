"""The pipelined engine of `~galcam.inference.WeakSegmenter.predict_dataset`.

Predicting an image has three stages of very different kinds: reading, planning,
resampling and encoding its tiles (Python, numpy, astropy, reproject: one CPU core at a
time), the networks (torch: many cores or a GPU, efficient on large batches), and the
instance step with the hosts (Python, numpy, scipy). Run one after the other, the
device waits for the Python stages and the cores for the device. Here the first and
last stages run in a pool of worker processes while this process runs the networks on
batches of tiles as they arrive, so that no stage waits for another:

- a worker reads and encodes an image (`WeakSegmenter._prepare_record`) and sends its
  tiles back; images are prepared ahead (twice the batch size or twice the number of
  workers, whichever is more), so that the next batch is ready when the networks finish
  one;
- this process stacks tiles (of consecutive images, as the serial engine does) into
  batches and runs the networks (`~galcam.models.ModelNetworks`);
- when the last tile of an image has been through the networks, a worker runs the
  instance step on its tiles, merges them, maps them back to the image's pixels and
  finds the hosts (`WeakSegmenter._group_tile`, `WeakSegmenter._finalize`).

Each stage runs the same code as the serial engine on the same batches, so the results
are the same (tested); they come back in the order of the images. A worker holds all
the tiles of the image it prepares (the serial engine streams them), which is what data
sets of cutouts need; a mosaic is the survey runner's work (`galcam.survey`).

Workers receive the segmenter without its networks once, and use one torch thread each
(the instance step uses a few torch operations), as torch's own data loader workers do.
On Linux they are forked (they start in a fraction of a second, and a script needs no
``if __name__ == "__main__":`` guard); elsewhere they are spawned, which imports galcam
in each (a few seconds) and, as for any spawned process, needs that guard in a script.
"""

import multiprocessing
import pickle
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import numpy as np

__all__ = ["run_pipelined"]

#: How worker processes start: forked on Linux, spawned elsewhere (see the module's notes).
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"

# the segmenter of this worker process, without its networks (set by _init_worker)
_SHELL = None


def _init_worker(shell, torch_threads):
    global _SHELL
    import torch

    torch.set_num_threads(torch_threads)
    _SHELL = pickle.loads(shell)


def _prepare(record, plane, batch_size):
    """Worker: an image read, planned and encoded; its job and all its tiles."""
    job, items = _SHELL._prepare_record(record, plane, batch_size)
    return job, list(items)


def _finish(job, tiles, score_threshold):
    """Worker: the instance step on every tile of an image, merged, with hosts."""
    for tile, inp, outputs in tiles:
        _SHELL._group_tile(job, tile, inp, outputs)
    return _SHELL._finalize(job, score_threshold)


class _Pending:
    """An image between its preparation and its result (in this process)."""

    __slots__ = ("job", "tiles", "remaining", "future")

    def __init__(self, job, n_tiles):
        self.job = job
        self.tiles = []
        self.remaining = n_tiles
        self.future = None


def worker_shell(segmenter):
    """The pickled segmenter without its networks: what a worker process needs."""
    import copy

    shell = copy.copy(segmenter)
    shell._networks = None
    return pickle.dumps(shell, protocol=pickle.HIGHEST_PROTOCOL)


def run_pipelined(segmenter, records, *, plane, batch_size, score_threshold, workers,
                  progress_bar=None, worker_torch_threads=1):
    """Predict image records with ``workers`` processes around the networks.

    Parameters
    ----------
    segmenter : `~galcam.inference.WeakSegmenter`
    records : iterable of `~galcam.datasets.coco.ImageRecord`
        Images of a data set, in order.
    plane : int, dict or None
        Plane of radio cubes.
    batch_size : int
        Tiles per network pass.
    score_threshold : float
        As `WeakSegmenter._finalize`.
    workers : int
        Worker processes (>= 1).
    progress_bar : tqdm bar, optional
        Updated per tile through the networks (its total grows per image).
    worker_torch_threads : int, optional
        Torch threads of each worker (the instance step uses a few torch operations).

    Yields
    ------
    job, result
        Per image, in the order of ``records``: the engine's job and the
        `~galcam.inference.SegmentationResult`.
    """
    context = multiprocessing.get_context(START_METHOD)
    records = iter(records)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker,
                             initargs=(worker_shell(segmenter), worker_torch_threads)) as pool:
        prepared = deque()  # futures of _prepare, in image order
        order = deque()  # _Pending of every image taken from `prepared`, in image order
        queue = deque()  # (pending, tile, input) waiting for the networks

        # images prepared ahead: the next batch's, while the networks run on this one (the
        # workers take tasks in order, so fewer would queue them behind the instance steps
        # of the batch just run and leave the networks waiting)
        ahead = max(2 * workers, 2 * batch_size)

        def refill():
            while len(prepared) < ahead:
                record = next(records, None)
                if record is None:
                    return
                prepared.append(pool.submit(_prepare, record, plane, batch_size))

        def submit_finish(pending):
            pending.future = pool.submit(_finish, pending.job, pending.tiles, score_threshold)
            pending.tiles = None

        refill()
        while prepared or queue:
            if prepared and len(queue) < batch_size:
                job, items = prepared.popleft().result()  # a worker's error is raised here
                refill()
                pending = _Pending(job, len(items))
                order.append(pending)
                if progress_bar is not None:
                    progress_bar.total = (progress_bar.total or 0) + len(items)
                    progress_bar.refresh()
                if not items:
                    submit_finish(pending)
                for tile, inp in items:
                    queue.append((pending, tile, inp))
            else:
                _run_batch(segmenter, queue, batch_size, submit_finish, progress_bar)
            while order and order[0].future is not None and order[0].future.done():
                done = order.popleft()
                yield done.job, done.future.result()
        while order:
            done = order.popleft()
            yield done.job, done.future.result()


def _run_batch(segmenter, queue, batch_size, submit_finish, progress_bar):
    """One network pass over the first tiles of ``queue`` (of one shape), as `_run` does."""
    shape = queue[0][2].channels.shape
    batch = []
    while queue and len(batch) < batch_size and queue[0][2].channels.shape == shape:
        batch.append(queue.popleft())
    outputs = segmenter._networks(np.stack([inp.channels for _, _, inp in batch]))
    for k, (pending, tile, inp) in enumerate(batch):
        pending.tiles.append((tile, inp, outputs.tile(k)))
        pending.remaining -= 1
        if pending.remaining == 0:
            submit_finish(pending)
    if progress_bar is not None:
        progress_bar.update(len(batch))

