"""The S3 server the tests run: moto's server mode, with its object writes
made atomic.

Real S3 evaluates a conditional PutObject (`If-Match`, `If-None-Match`)
atomically: of two writers that race on one object with the ETag they
both read, exactly one wins and the other gets 412 (or 409
ConditionalRequestConflict). moto 5.2.5 checks the condition and then
stores the object with nothing held in between, on a threaded werkzeug
server, so two racing writers can both win. The S3 backend's cross-node
guarantee (plugins/s3: a mutable share's test-and-write is a conditional
PUT) rests on S3's atomicity, and its conformance test
(`writers_on_two_nodes_never_both_win`) lost an increment to moto's
race, not to the backend's.

So this runs moto's own `main` with one lock around the two handlers
that check a condition and then change an object, PutObject and
DeleteObject: the semantics S3 documents, and nothing more. Reads,
copies and multipart parts stay concurrent.

Usage: python s3-test-server.py -H HOST -p PORT (moto_server's flags).
"""

import functools
import threading

from moto import server
from moto.s3.responses import S3Response

_WRITES = threading.Lock()


def _atomic(handler):
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        with _WRITES:
            return handler(self, *args, **kwargs)

    return run


for _name in ("put_object", "delete_object"):
    setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    server.main()
