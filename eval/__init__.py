"""The evaluation suite: known questions scored for retrieval, answers, citation grounding and abstention.

It only uses the public Python API (`rag.RAG`); `python -m eval` and `rag eval` run it.
"""
