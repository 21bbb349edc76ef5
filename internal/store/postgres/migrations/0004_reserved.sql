-- Reserved for the promotion work's migration (0004 on its branch).
-- This placeholder keeps the sequence contiguous on the flagserver branch: drop it when merging.
SELECT 1;
