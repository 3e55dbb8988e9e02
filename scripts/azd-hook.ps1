# azd hook entry point on Windows (azure.yaml): runs scripts/azd_hook.py with the project's virtualenv when present.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..')
$py = if (Test-Path '.venv/Scripts/python.exe') { '.venv/Scripts/python.exe' } else { 'python' }
& $py -m scripts.azd_hook @args
exit $LASTEXITCODE
