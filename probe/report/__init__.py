"""The report machinery: read results, answer questions by stated rules, render one self-contained page.

- :mod:`probe.report.collect`: find the result files of run folders and read each through its Result class;
- :mod:`probe.report.answers`: the ``QUESTIONS`` registry (a rule per question) and ``Answer``;
- :mod:`probe.report.sections`: the ``SECTIONS`` registry, its helpers and the sections of core results;
- :mod:`probe.report.document`: the document model and its HTML and Markdown writers.

Questions and sections are registered by the modules that produce the results they
read (``analyses/*.py``, ``probe/experiments.py``).  Building a report therefore
belongs to the orchestration layer, which imports them all first:
:func:`probe.report.build.build_report`.
"""
