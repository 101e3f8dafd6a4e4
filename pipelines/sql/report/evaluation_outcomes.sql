-- Outcomes per pupil and term for the matched comparison (pupil-level, never shown).
select pupil_key, term, term_index, school_year, share_passed, eligible_vocational
from pupil_term_outcomes
where term_year <= $year
