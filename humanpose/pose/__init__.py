"""The pose task: what ``humanpose train``/``test`` do for key-point models.

Its pieces sit side by side as in :mod:`humanpose.detection`: the Task object
(:mod:`.task`), the losses (:mod:`.loss`), the prediction + scoring loop
(:mod:`.evaluate`) and the one-stage RTMO test task (:mod:`.one_stage`); the shared layers
below it (data, codecs, models, evaluation metrics) serve inference too. Importing this
package registers the task for every pose model.
"""

from humanpose.engine.task import register_task
from humanpose.inference.one_stage import ONE_STAGE_MODELS
from humanpose.pose.one_stage import OneStageTask
from humanpose.pose.task import PoseTask

# The model families (humanpose.models.MODEL_BUILDERS) that this task trains and tests.
POSE_MODELS = ("pose_resnet", "pose_hrnet", "lpn", "rtmpose", "rtmw")
register_task(PoseTask(), POSE_MODELS)
# One-stage RTMO: whole images, tested (humanpose.pose.one_stage), not trained.
register_task(OneStageTask(), ONE_STAGE_MODELS)

__all__ = ["ONE_STAGE_MODELS", "POSE_MODELS", "OneStageTask", "PoseTask"]
