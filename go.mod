module smtpkit

go 1.26.8
