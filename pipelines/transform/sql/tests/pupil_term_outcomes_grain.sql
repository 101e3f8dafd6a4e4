-- pupil_term_outcomes: one row per pupil and term.
select pupil_key, term_index, count(*) as n
from pupil_term_outcomes
group by all
having count(*) > 1
