from tinydeploy.cli import main

main()
