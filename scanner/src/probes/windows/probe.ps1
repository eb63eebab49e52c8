# fleetsweep Windows probe: read-only, prints one JSON document. Never Win32_Product.
$ErrorActionPreference='SilentlyContinue';$ProgressPreference='SilentlyContinue'
[Console]::OutputEncoding=[Text.Encoding]::UTF8
$E=[Collections.ArrayList]::new()
function C($v,$n=1024){if($null -eq $v){return $null};$s="$v";if($s.Length -gt $n){$s.Substring(0,$n)}else{$s}}
function W($s,$m){[void]$E.Add(@{Section=$s;Message=(C $m 300)})}
$o=Get-CimInstance Win32_OperatingSystem
$os=@{Caption=C $o.Caption;Version=C $o.Version;BuildNumber=C $o.BuildNumber;ProductType=$o.ProductType}
$U=[Collections.ArrayList]::new()
$roots=@('HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall','HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall')
foreach($h in (Get-ChildItem Registry::HKEY_USERS|Where-Object{$_.PSChildName -notlike '*_Classes'})){$roots+="Registry::HKEY_USERS\$($h.PSChildName)\Software\Microsoft\Windows\CurrentVersion\Uninstall"}
foreach($r in $roots){foreach($k in (Get-ChildItem $r|Select-Object -First 3000)){$p=Get-ItemProperty $k.PSPath
if($p.DisplayName){[void]$U.Add(@{Key=C $k.Name;DisplayName=C $p.DisplayName;DisplayVersion=C $p.DisplayVersion;Publisher=C $p.Publisher;InstallLocation=C $p.InstallLocation;UninstallString=C $p.UninstallString})}}}
$S=@(Get-CimInstance Win32_Service|Select-Object -First 5000|ForEach-Object{@{Name=C $_.Name;DisplayName=C $_.DisplayName;State=C $_.State;StartMode=C $_.StartMode;PathName=C $_.PathName}})
if($S.Count -eq 0){W services 'Win32_Service returned nothing'}
$F=@{}
foreach($k in (Get-ChildItem HKLM:\SYSTEM\CurrentControlSet\Services)){$i=Join-Path $k.PSPath Instances
if(Test-Path $i){$a=(Get-ChildItem $i|Select-Object -First 1|Get-ItemProperty).Altitude;$F[$k.PSChildName]=C $a}}
$D=@(Get-CimInstance Win32_SystemDriver|Select-Object -First 5000|ForEach-Object{@{Name=C $_.Name;DisplayName=C $_.DisplayName;State=C $_.State;StartMode=C $_.StartMode;PathName=C $_.PathName;Altitude=$F[$_.Name]}})
$P=@(Get-CimInstance Win32_Process|Select-Object -First 10000|ForEach-Object{@{ProcessId=$_.ProcessId;Name=C $_.Name;ExecutablePath=C $_.ExecutablePath;CommandLine=C $_.CommandLine 4096}})
if($P.Count -eq 0){W processes 'Win32_Process returned nothing'}
$K=[Collections.ArrayList]::new();$V=[Collections.ArrayList]::new()
foreach($b in 'HKLM:\SOFTWARE\KasperskyLab','HKLM:\SOFTWARE\WOW6432Node\KasperskyLab'){if(Test-Path $b){[void]$K.Add(($b -replace '^HKLM:','HKLM'))
foreach($c in (Get-ChildItem $b -Recurse -Depth 6|Select-Object -First 400)){[void]$K.Add((C $c.Name))}
$s=Get-ItemProperty "$b\Components\34\1103\1.0.0.0\Statistics\AVState"
foreach($n in 'Protection_BasesDate','Protection_LastConnected','Protection_AvState'){if($null -ne $s.$n){[void]$V.Add(@{Key="$b\Components\34\1103\1.0.0.0\Statistics\AVState";Name=$n;Value=C $s.$n})}}}}
$T=[Collections.ArrayList]::new()
foreach($b in $env:ProgramFiles,${env:ProgramFiles(x86)},$env:ProgramData){if(-not $b){continue}
foreach($n in 'Kaspersky Lab','KasperskyLab'){$d=Join-Path $b $n;if(Test-Path $d){[void]$T.Add(@{Path=$d;Kind='dir'})
foreach($c in (Get-ChildItem $d -Force|Select-Object -First 200)){[void]$T.Add(@{Path=C $c.FullName;Kind=$(if($c.PSIsContainer){'dir'}else{'file'})})}}}}
$A=$null
try{$A=@(Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct -ErrorAction Stop|ForEach-Object{@{displayName=C $_.displayName;pathToSignedProductExe=C $_.pathToSignedProductExe;productState=$_.productState}})}catch{W av_products "Security Center not available: $($_.Exception.Message)"}
$R=@(Get-ChildItem Cert:\LocalMachine\Root|Select-Object -First 1000|ForEach-Object{@{Subject=C $_.Subject;Thumbprint=C $_.Thumbprint;NotAfter=$_.NotAfter.ToString('yyyy-MM-dd')}})
$X=[Collections.ArrayList]::new()
foreach($u in (Get-ChildItem "$env:SystemDrive\Users" -Directory|Select-Object -First 500)){
foreach($g in @(@('chrome','AppData\Local\Google\Chrome\User Data'),@('edge','AppData\Local\Microsoft\Edge\User Data'))){$ud=Join-Path $u.FullName $g[1]
foreach($e in (Get-ChildItem "$ud\*\Extensions\*" -Directory|Select-Object -First 2000)){[void]$X.Add(@{Browser=$g[0];Profile=C $e.Parent.Parent.FullName;Id=C $e.Name 200})}}
foreach($e in (Get-ChildItem (Join-Path $u.FullName 'AppData\Roaming\Mozilla\Firefox\Profiles\*\extensions\*')|Select-Object -First 2000)){[void]$X.Add(@{Browser='firefox';Profile=C $e.Directory.FullName;Id=C ($e.Name -replace '\.xpi$','') 200})}}
[ordered]@{fleetsweep=1;os=$os;uninstall=$U;services=$S;drivers=$D;processes=$P;registry_keys=$K;registry_values=$V;paths=$T;av_products=$A;certificates=$R;browser_extensions=$X;errors=$E}|ConvertTo-Json -Depth 4 -Compress
