"""Extracts every file of an encrypted backup with iphone_backup_decrypt (a third-party reader).

Usage: ibd_extract.py BACKUP_DIR OUTPUT_DIR   (password in env IOSNAP_PEER_PASSWORD)
Writes OUTPUT_DIR/<domain>/<relativePath>; prints the number of files; exits 3 when the
password is rejected, 1 on any other failure. Used by crates/format/tests/peers.rs and
bench/extract.sh.
"""
import os
import sys

from iphone_backup_decrypt import EncryptedBackup


def main() -> int:
    backup_dir, output_dir = sys.argv[1], sys.argv[2]
    password = os.environ["IOSNAP_PEER_PASSWORD"]
    try:
        backup = EncryptedBackup(backup_directory=backup_dir, passphrase=password)
        backup.test_decryption()
    except ValueError as e:
        print(f"rejected: {e}", file=sys.stderr)
        return 3
    n = backup.extract_files(
        relative_paths_like="%",
        domain_like="%",
        output_folder=output_dir,
        preserve_folders=True,
        domain_subfolders=True,
    )
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
