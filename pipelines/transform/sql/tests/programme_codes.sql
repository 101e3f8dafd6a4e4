-- programme_enrolments.programme: only the register's programmes (data contract 1.5; pipelines.codes).
select programme, count(*) as n
from programme_enrolments
where programme not in ('PPSS', 'SkolFam')
group by all
