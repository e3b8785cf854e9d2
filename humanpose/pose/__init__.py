"""The pose task: what ``humanpose train``/``test`` do for key-point models.

Its pieces sit side by side as in :mod:`humanpose.detection`: the Task object
(:mod:`.task`), the losses (:mod:`.loss`) and the prediction + scoring loop
(:mod:`.evaluate`); the shared layers below it (data, codecs, models, evaluation metrics)
serve inference too. Importing this package registers the task for every pose model.
"""

from humanpose.engine.task import register_task
from humanpose.models import MODEL_BUILDERS
from humanpose.pose.task import PoseTask

register_task(PoseTask(), MODEL_BUILDERS)

__all__ = ["PoseTask"]
