"""What every layer shares and none owns: user errors, atomic files, the terminal, escaping text
for documents, file digests, the label font.

curation, shards and training may all import it; it imports none of them, nor torch or Ray
(tests/test_layering.py), so the plumbing never decides the layering.
"""
