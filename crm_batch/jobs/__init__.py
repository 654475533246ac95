"""Jobs: one recorded run from start to end, in order (the nightly and quarterly
pipelines, the harvest, the demo). A job chains services (:mod:`crm_batch.app`) and
outputs (workbooks, reports, delivery) under the run lock; entry points call one job.
"""
