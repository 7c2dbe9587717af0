"""A tiny SMTP server for the auth tests: aiosmtpd on 127.0.0.1, each message saved as
one .eml file in the folder given. Prints "PORT <n>" once it listens, then runs until
stdin closes (so it dies with the test process)."""
import socket
import sys
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class SaveToFolder:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        name = self.folder / f"{uuid.uuid4().hex}.eml"
        partial = name.with_suffix(".partial")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(name)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    controller = Controller(SaveToFolder(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
