"""The anyres dataset format: native-resolution images in WebDataset shards, with an index.

See DESIGN.md section 2. This package imports neither torch nor ray.
"""

from plumbing.errors import ConfigError, DatasetError, UserError
from shards.format.index import IndexFilter
from shards.format.limits import Limits
from shards.format.reader import Dataset, Sample, iter_shard_urls
from shards.format.schema import FORMAT_NAME, FORMAT_VERSION, FormatError, SampleMeta, check_key
from shards.format.writer import DatasetWriter, WriterConfig

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "FormatError",
    "IndexFilter",
    "Limits",
    "Sample",
    "SampleMeta",
    "UserError",
    "WriterConfig",
    "check_key",
    "iter_shard_urls",
]
