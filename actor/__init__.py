"""The actor: drives one robot with the latest policy and streams its transitions to the learner."""

DEFAULT_EVAL_EPISODES = 5
"""Episodes per evaluation block unless `--eval-episodes` says otherwise (the learner's stop-rule check reads it)."""
