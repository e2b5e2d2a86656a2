"""Storage layer: IPFS with locally verified CIDs, model manifests and per-licensee encryption.

from agents.storage import IpfsClient, publish_model, fetch_model
with IpfsClient() as ipfs:                      # node URL from OML_IPFS_API_URL
    ref = publish_model(ipfs, Path("my-model"), encrypt_to=host_pubkey)
    fetch_model(ipfs, ref.cid, Path("copy"), private_key=host_key)
"""

from agents.storage.cid import Cid
from agents.storage.client import IpfsClient, IpfsStore, Stat
from agents.storage.crypto import (
    decrypt_file,
    decrypt_folder,
    decrypt_stream,
    encrypt_file,
    encrypt_folder,
    encrypt_stream,
)
from agents.storage.errors import (
    ContentMismatch,
    DecryptionError,
    InvalidCid,
    KeyFileError,
    ManifestError,
    NodeError,
    NodeTimeout,
    NodeUnavailable,
    StorageError,
    UnsupportedDag,
)
from agents.storage.keys import load_keystore, normalize_public_key, public_key_of
from agents.storage.manifest import FileEntry, ModelManifest, ParentRef
from agents.storage.models import (
    ManifestRef,
    fetch_model,
    load_manifest,
    publish_model,
    publish_sealed,
    seal_folder,
)
from agents.storage.unixfs import cid_of_bytes

__all__ = [
    "Cid",
    "ContentMismatch",
    "DecryptionError",
    "FileEntry",
    "InvalidCid",
    "IpfsClient",
    "IpfsStore",
    "KeyFileError",
    "ManifestError",
    "ManifestRef",
    "ModelManifest",
    "NodeError",
    "NodeTimeout",
    "NodeUnavailable",
    "ParentRef",
    "Stat",
    "StorageError",
    "UnsupportedDag",
    "cid_of_bytes",
    "decrypt_file",
    "decrypt_folder",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_folder",
    "encrypt_stream",
    "fetch_model",
    "load_keystore",
    "load_manifest",
    "normalize_public_key",
    "public_key_of",
    "publish_model",
    "publish_sealed",
    "seal_folder",
]
