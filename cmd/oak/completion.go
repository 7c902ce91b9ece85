package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/oak-engine/oak/engine"
)

// Shell completion: cobra's `oak completion bash|zsh|fish|powershell`
// writes the script; the script asks the hidden `oak __complete ARGS...`
// for candidates, which the functions below give for the verbs that take
// a container, an image or a volume.

type completeFunc = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective)

// completeNames offers what names lists, for the first argument only
// when first is set.
func completeNames(first bool, names func(e *engine.Engine) []string, stateRoot func() string) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if first && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		e, err := engine.New(stateRoot())
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, n := range names(e) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// containerNames lists the names of containers, only running ones when
// running is set.
func containerNames(running bool) func(e *engine.Engine) []string {
	return func(e *engine.Engine) []string {
		cs, _ := e.ListContainers(engine.Filter{})
		var names []string
		for _, c := range cs {
			if !running || c.State.Running {
				names = append(names, c.Name)
			}
		}
		return names
	}
}

func imageNames(e *engine.Engine) []string {
	imgs, _ := e.ListImages()
	var names []string
	for _, img := range imgs {
		names = append(names, img.RepoTags...)
	}
	return names
}

func volumeNames(e *engine.Engine) []string {
	vs, _ := e.ListVolumes()
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	return names
}

func completeContainers(stateRoot func() string) completeFunc {
	return completeNames(false, containerNames(false), stateRoot)
}

func completeRunning(first bool, stateRoot func() string) completeFunc {
	return completeNames(first, containerNames(true), stateRoot)
}

func completeImages(first bool, stateRoot func() string) completeFunc {
	return completeNames(first, imageNames, stateRoot)
}

func completeVolumes(stateRoot func() string) completeFunc {
	return completeNames(false, volumeNames, stateRoot)
}

// completeObjects offers containers, images and volumes, for inspect.
func completeObjects(stateRoot func() string) completeFunc {
	return completeNames(false, func(e *engine.Engine) []string {
		return append(append(containerNames(false)(e), imageNames(e)...), volumeNames(e)...)
	}, stateRoot)
}
