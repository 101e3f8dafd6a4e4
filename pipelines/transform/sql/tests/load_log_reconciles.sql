-- load_log: rows read = loaded + quarantined + not used, for every file (data contract 3).
select path, rows_read, rows_loaded, rows_quarantined, rows_unused
from load_log
where rows_read <> rows_loaded + rows_quarantined + rows_unused
