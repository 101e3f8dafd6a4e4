-- programme_starts: one row per pupil and programme.
select pupil_key, programme, count(*) as n
from programme_starts
group by all
having count(*) > 1
