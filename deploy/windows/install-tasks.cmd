@echo off
rem crm-batch on Windows, next to Excel: creates the nightly and quarterly tasks in Task
rem Scheduler (see "Deployment" in README.md). Run once from an elevated prompt; edit CRM_HOME
rem (where crm-batch and its crm_batch.toml live) and the account first. /RP * asks for
rem the account's password, so the tasks run whether or not the user is logged on.
rem Times are the machine's local time: set them to schedule.nightly_at and
rem schedule.quarterly_at converted from general.timezone if the two differ.
setlocal
set CRM_HOME=C:\crm-batch

schtasks /Create /F /TN "crm-batch\nightly" /SC DAILY /ST 02:30 /RU "%USERDOMAIN%\%USERNAME%" /RP * ^
  /TR "cmd /c cd /d %CRM_HOME% && .venv\Scripts\python.exe run_batch.py nightly --catch-up >> var\nightly.log 2>&1"
schtasks /Create /F /TN "crm-batch\quarterly" /SC MONTHLY /M JAN,APR,JUL,OCT /D 1 /ST 06:00 /RU "%USERDOMAIN%\%USERNAME%" /RP * ^
  /TR "cmd /c cd /d %CRM_HOME% && .venv\Scripts\python.exe run_batch.py quarterly --send >> var\quarterly.log 2>&1"
endlocal
