"""Start the chat app: `python app.py [--host H] [--port P] [--auth user:password]`, http://127.0.0.1:7860.

`rag serve` and `make run` start the same app. It lives in the package: the callbacks, layout and
start-up in rag/webapp/, the HTML in rag/ui.py, login rules in rag/access.py, upload checks in
rag/uploads.py, saved chats in rag/chats.py.
"""

import sys

from rag import webapp

if __name__ == "__main__":
    webapp.main(sys.argv[1:], prog="app.py")
