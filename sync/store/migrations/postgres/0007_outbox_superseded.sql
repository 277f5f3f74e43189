-- A parked outbox operation an operator tried to retry after a later
-- operation on the same subject (team, user, or team and user) was already
-- delivered is set aside as 'superseded' (store/outbox.go, RequeueOutbox):
-- delivering it now would undo the later change. superseded_by is that
-- later operation's id.

ALTER TABLE litellm_outbox DROP CONSTRAINT litellm_outbox_status_check;
ALTER TABLE litellm_outbox ADD CONSTRAINT litellm_outbox_status_check
    CHECK (status IN ('pending', 'parked', 'done', 'superseded'));
ALTER TABLE litellm_outbox ADD COLUMN superseded_by bigint;
