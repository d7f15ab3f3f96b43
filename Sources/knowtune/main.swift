print("knowtune")
