-- Reserved for the flag change requests' migration (branch changereq), which
-- replaces this file when both branches merge: migrations run 1, 2, 3, …
-- without gaps, and the sessions' migration is 0007.
SELECT 1;
