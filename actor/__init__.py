"""The actor: drives one robot with the latest policy and streams its transitions to the learner."""
