"""Pipelines of several trainings declared in config (``pipeline.stages``, :mod:`.stages`):
D-DFFNet's two stages (``conf/pipeline/ddffnet_two_stage.yaml``) and BTBNet's pretrain -> fine-tune
(``conf/pipeline/btbnet_pretrain_finetune.yaml``)."""
