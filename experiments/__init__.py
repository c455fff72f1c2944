"""Experiments: one sub-package per method, each runnable as ``python -m experiments.<name>``.

A sub-package joins the tour by defining, in its ``__init__.py``:

* ``TITLE``: one line naming the method (and paper);
* ``HEADLINE``: the ``results.json`` keys shown in the tour's summary table.

and by having ``config.py`` (``get_config(preset)``) and ``train.py``
(``train_and_evaluate(config, workdir)``). The tour discovers them; nothing
else needs registering.
"""
