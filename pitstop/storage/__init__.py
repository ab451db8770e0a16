"""Object storage: files behind ``s3://`` URLs, read through ``pyarrow.fs``, copied once per host."""

from pitstop.storage.remote import (
    RemoteFile,
    is_remote,
    list_remote_parquet,
    list_remote_parquet_many,
    local_copies,
    resolve_path,
    set_cache_dir,
)

__all__ = ["RemoteFile", "is_remote", "list_remote_parquet", "list_remote_parquet_many", "local_copies", "resolve_path",
           "set_cache_dir"]
