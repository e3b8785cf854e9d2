"""The pose task: what ``humanpose train``/``test`` do for key-point models.

Its pieces sit side by side as in :mod:`humanpose.detection`: the Task object
(:mod:`.task`), the losses (:mod:`.loss`) and the prediction + scoring loop
(:mod:`.evaluate`); the shared layers below it (data, codecs, models, evaluation metrics)
serve inference too. Importing this package registers the task for every pose model.
"""

from humanpose.engine.task import register_task
from humanpose.pose.task import PoseTask

# The model families (humanpose.models.MODEL_BUILDERS) that this task trains and tests.
POSE_MODELS = ("pose_resnet", "pose_hrnet", "lpn", "rtmpose", "rtmw")
register_task(PoseTask(), POSE_MODELS)

__all__ = ["POSE_MODELS", "PoseTask"]
