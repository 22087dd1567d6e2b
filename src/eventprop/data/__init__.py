"""The data pipeline: official SHD/SSC files (and generated sets) to engine mini-batches.

Data flows one way::

    download.py      fetch + verify + decompress the official .h5.gz files
    hdf5.py          read and validate the HDF5 layout            -> RawSpikes
    preprocess.py    bin to dt, crop, one spike/step, pool        -> SpikeData (cached: cache.py)
    augment.py       seeded, epoch-wide vectorised augmentations  -> SpikeData
    splits.py        random / leave-one-speaker-out / official splits (index arrays)
    datasets.py      torch Datasets; collate.py -> (EventBatch, labels); delay.py: delay line

``yinyang.py`` and ``randman.py`` generate download-free datasets with the same interface;
``tonic_interop.py`` converts tonic's structured event arrays.
"""

from eventprop.data.augment import (
    Blend,
    ChannelJitter,
    ChannelShift,
    Compose,
    SpikeDropout,
    TimeDilation,
    augment_epoch,
    build_augmentations,
)
from eventprop.data.collate import (
    EventCollate,
    SampleEvents,
    build_event_batch,
    collate_events,
    event_batch_from_data,
    iter_batches,
)
from eventprop.data.datasets import SpikeDataset, TonicDataset, dataset_file, load_shd, load_ssc
from eventprop.data.delay import DelayLine, expand_delays
from eventprop.data.download import download_dataset
from eventprop.data.errors import ChecksumError, DataFileError, DownloadError, UnreadableFileError
from eventprop.data.hdf5 import RawSpikes, read_hdf5
from eventprop.data.paths import data_dir
from eventprop.data.preprocess import BinningConfig, bin_spikes, load_preprocessed
from eventprop.data.randman import randman
from eventprop.data.spikes import SpikeData
from eventprop.data.splits import SpeakerFold, leave_one_speaker_out, random_split
from eventprop.data.tonic_interop import from_tonic, spike_data_from_tonic, to_tonic
from eventprop.data.yinyang import yin_yang, yin_yang_splits

__all__ = [
    "BinningConfig",
    "Blend",
    "ChannelJitter",
    "ChannelShift",
    "ChecksumError",
    "Compose",
    "DataFileError",
    "DelayLine",
    "DownloadError",
    "EventCollate",
    "RawSpikes",
    "SampleEvents",
    "SpeakerFold",
    "SpikeData",
    "SpikeDataset",
    "SpikeDropout",
    "TimeDilation",
    "TonicDataset",
    "UnreadableFileError",
    "augment_epoch",
    "bin_spikes",
    "build_augmentations",
    "build_event_batch",
    "collate_events",
    "data_dir",
    "dataset_file",
    "download_dataset",
    "event_batch_from_data",
    "expand_delays",
    "from_tonic",
    "iter_batches",
    "leave_one_speaker_out",
    "load_preprocessed",
    "load_shd",
    "load_ssc",
    "randman",
    "random_split",
    "read_hdf5",
    "spike_data_from_tonic",
    "to_tonic",
    "yin_yang",
    "yin_yang_splits",
]
